"""Reads for accounts, and the helper that fetches *and* authorises another user."""

from __future__ import annotations

from typing import TypedDict

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.models import (
    UNIT_ROLES,
    AuthSession,
    AuthSessionState,
    Invite,
    Role,
    Unit,
    User,
)
from keys.services import invite_token_hash


def users_visible_to(actor: User) -> QuerySet[User]:
    """Users the actor may look up: a unit's staff and the members of its projects; for a
    researcher, the members of their projects; a Super Admin sees everyone."""
    qs = User.objects.select_related("unit")
    if actor.role == Role.SUPER_ADMIN:
        return qs
    if actor.role in UNIT_ROLES:
        return qs.filter(Q(unit_id=actor.unit_id)
                         | Q(memberships__project__unit_id=actor.unit_id)).distinct()
    return qs.filter(Q(pk=actor.pk) | Q(memberships__project__memberships__user=actor)).distinct()


def units_visible_to(actor: User) -> QuerySet[Unit]:
    """Units the actor may list: all for a Super Admin, their own for unit staff."""
    if actor.role == Role.SUPER_ADMIN:
        return Unit.objects.order_by("name")
    return Unit.objects.filter(staff=actor)


def user_get_for_actor(*, actor: User, username: str) -> User:
    """Fetch a user the actor may see, else 404 (so other units' users are not confirmed)."""
    user = users_visible_to(actor).filter(username=username).first()
    if user is None:
        raise Http404("No such user.")
    return user


class ProjectSummary(TypedDict):
    project: str
    title: str
    is_owner: bool


def user_projects_summary(user: User) -> list[ProjectSummary]:
    """The user's project memberships: public id, title and owner flag, by id."""
    rows = user.memberships.select_related("project").order_by("project__public_id")
    return [{"project": m.project.public_id, "title": m.project.title, "is_owner": m.is_owner}
            for m in rows]


def user_sessions_live(user: User) -> QuerySet[AuthSession]:
    """The user's logged-in sessions (portal and API), newest first."""
    return AuthSession.objects.filter(user=user, state=AuthSessionState.ACTIVE,
                                      ended_at__isnull=True,
                                      expires_at__gt=timezone.now()).order_by("-created_at")


def invite_get_by_token(token: str, *, for_update: bool = False) -> Invite | None:
    """A valid (unexpired) invite for an emailed token, or None.

    ``for_update`` locks the invite row (inside the caller's transaction: registration).
    """
    if not token or len(token) > 200:
        return None
    qs = Invite.objects.select_related("project", "unit", "created_by")
    if for_update:
        qs = qs.select_for_update(of=("self",))
    invite = qs.filter(token_hash=invite_token_hash(token)).first()
    if invite is None or invite.is_expired:
        return None
    return invite


def unit_admin_emails(unit_id: int, *, exclude: User | None = None) -> set[str]:
    """Addresses of the unit's active Unit Admins."""
    qs = User.objects.filter(unit_id=unit_id, role=Role.UNIT_ADMIN, is_active=True)
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    return set(qs.values_list("email", flat=True))


def password_reset_notice_recipients(user: User) -> list[str]:
    """Who to tell that ``user`` lost their project keys: the unit's admins for staff;
    for others, each project's owners (or, without one, its unit's admins).

    The projects are reached through the user's memberships (the reverse relation),
    so accounts does not import projects.
    """
    if user.unit_id:
        return sorted(unit_admin_emails(user.unit_id, exclude=user))
    emails: set[str] = set()
    for membership in user.memberships.select_related("project"):
        project = membership.project
        owners = set(User.objects.filter(memberships__project=project,
                                         memberships__is_owner=True, is_active=True)
                     .exclude(pk=user.pk).values_list("email", flat=True))
        emails |= owners or unit_admin_emails(project.unit_id)
    return sorted(emails)
