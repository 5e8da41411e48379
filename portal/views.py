"""Researcher portal pages: project list, project page (files, people), downloads.

Thin views: authorisation in projects.selectors / transfers.selectors, every write in a
service. Domain errors raised here become error pages with their status
(ddsite.middleware.PortalErrorMiddleware); the member forms show theirs on the project
page (:func:`_members_action`).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseServerError, JsonResponse
from django.shortcuts import redirect, render
from django.template import loader
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.portal import portal_login_required
from accounts.services import auth_sessions_end
from accounts.sessions import PORTAL_SESSION_KEY, live_session, request_kek
from core.client_ip import client_ip
from core.errors import DDSError
from core.throttling import throttle_check
from portal import downloads
from portal.selectors import files_search, project_list_rows, project_people
from projects import services as project_services
from projects.selectors import Need, project_get_for_user
from transfers.errors import BadInput
from transfers.paths import path_ancestors, path_normalise
from transfers.selectors import Op, folder_list, transfer_project_get, transfer_refusal

PAGE_SIZE = 50


def _offset(request) -> int:
    raw = request.GET.get("offset", "0")
    if not raw.isdigit() or len(raw) > 9:
        raise BadInput("offset must be a whole number.")
    return int(raw)


# --------------------------------------------------------------------------- projects


@portal_login_required
@require_GET
def project_list(request):
    return render(request, "portal/project_list.html",
                  {"projects": project_list_rows(request.user)})


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(
        attrs={"autocomplete": "off"}))
    owner = forms.BooleanField(required=False, label="Also a project owner (may invite and "
                                                     "revoke)")


def _can_manage(user, project) -> bool:
    try:
        project_get_for_user(user=user, public_id=project.public_id, need=Need.OWNER)
    except PermissionDenied:
        return False
    return True


@portal_login_required
@require_GET
def project_detail(request, project_id: str):
    user = request.user
    project = project_get_for_user(user=user, public_id=project_id)
    folder = path_normalise(request.GET.get("folder", ""), allow_root=True)
    query = request.GET.get("q", "").strip()
    offset = _offset(request)
    context = {"project": project, "folder": folder, "query": query,
               "prev_offset": max(offset - PAGE_SIZE, 0) if offset else None,
               "history": project.status_events.select_related("by").order_by("at", "id"),
               "crumbs": [(f, f.rpartition("/")[2]) for f in path_ancestors(folder)][1:],
               "can_manage": _can_manage(user, project), "invite_form": InviteForm()}
    refusal = transfer_refusal(project=project, user=user, op=Op.LIST)
    if refusal is not None:
        context["files_note"] = refusal.message
    else:
        if query:
            context["search"] = files_search(project=project, folder=folder, query=query,
                                             offset=offset, limit=PAGE_SIZE)
        else:
            context["listing"] = folder_list(project=project, folder=folder, offset=offset,
                                             limit=PAGE_SIZE)
        context["can_download"] = transfer_refusal(project=project, user=user,
                                                   op=Op.DOWNLOAD) is None
    context["members"], context["invites"] = project_people(project)
    context["damaged"] = downloads.damaged_notes_pop(request, project)
    return render(request, "portal/project.html", context)


# --------------------------------------------------------------------------- downloads


@portal_login_required
@require_GET
def download_file(request, project_id: str):
    project = transfer_project_get(user=request.user, public_id=project_id, op=Op.DOWNLOAD)
    return downloads.file_response(project=project, user=request.user,
                                   kek=request_kek(request), path=request.GET.get("path", ""),
                                   ip=client_ip(request), request=request)


@portal_login_required
@require_GET
def download_folder(request, project_id: str):
    project = transfer_project_get(user=request.user, public_id=project_id, op=Op.DOWNLOAD)
    return downloads.folder_response(project=project, user=request.user,
                                     kek=request_kek(request),
                                     folder=request.GET.get("folder", ""),
                                     ip=client_ip(request), request=request)


# --------------------------------------------------------------------------- members


def _members_action(request, project_id: str, action, success: str):
    """Run one member service as a project owner (or unit staff); errors are shown on
    the project page, which the browser returns to."""
    project = project_get_for_user(user=request.user, public_id=project_id, need=Need.OWNER)
    try:
        action(project)
        messages.success(request, success)
    except (DDSError, ValidationError) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", None) or [str(exc)]))
    return redirect(reverse("portal:project", args=[project.public_id]) + "#people")


@portal_login_required
@require_POST
def member_invite(request, project_id: str):
    throttle_check(request, "invite", by="user")
    form = InviteForm(request.POST)
    if not form.is_valid():
        project = project_get_for_user(user=request.user, public_id=project_id)
        messages.error(request, "Enter a valid email address to invite.")
        return redirect(reverse("portal:project", args=[project.public_id]) + "#people")
    email, owner = form.cleaned_data["email"], form.cleaned_data["owner"]
    return _members_action(request, project_id, lambda project: project_services.project_member_add(
        project=project, by=request.user, kek=request_kek(request), email=email, owner=owner,
        ip=client_ip(request)), f"Invited {email}{' as an owner' if owner else ''}.")


@portal_login_required
@require_POST
def member_revoke(request, project_id: str, username: str):
    return _members_action(request, project_id, lambda project: (
        project_services.project_member_revoke(project=project, by=request.user,
                                               username=username, ip=client_ip(request))),
        f"{username} no longer has access.")


@portal_login_required
@require_POST
def member_owner(request, project_id: str, username: str):
    owner = request.POST.get("owner") == "1"
    return _members_action(request, project_id, lambda project: (
        project_services.project_member_set_owner(project=project, by=request.user,
                                                  username=username, owner=owner,
                                                  ip=client_ip(request))),
        f"{username} is {'now' if owner else 'no longer'} a project owner.")


@portal_login_required
@require_POST
def member_access_fix(request, project_id: str, username: str):
    return _members_action(request, project_id, lambda project: (
        project_services.project_access_fix(project=project, by=request.user,
                                            kek=request_kek(request), username=username,
                                            ip=client_ip(request))),
        f"Access restored for {username}.")


# --------------------------------------------------------------------------- account


@portal_login_required
@require_POST
def sessions_end_others(request):
    current = live_session(public_id=request.session[PORTAL_SESSION_KEY],
                           user_id=request.user.pk)
    ended = auth_sessions_end(user=request.user, reason="portal_end_others", keep=current,
                              ip=client_ip(request))
    messages.success(request, f"Ended {ended} other session{'s' if ended != 1 else ''}.")
    return redirect("accounts:account")


# --------------------------------------------------------------------------- errors


def _error(request, status: int, template: str, message: str):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=status)
    return render(request, template, {"message": message}, status=status)


def permission_denied(request, exception=None):
    return _error(request, 403, "403.html", "You do not have permission to do this.")


def page_not_found(request, exception=None):
    return _error(request, 404, "404.html", "Not found.")


def server_error(request):
    # No context processors and no database here: whatever broke may be the database.
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Server error; it has been logged."}, status=500)
    return HttpResponseServerError(loader.get_template("500.html").render())
