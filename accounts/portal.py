"""Portal pages for accounts: login with a second factor, registration, passwords, account.

Thin views over accounts.services, like the API. The key session of a portal login is the
same as the API's: the sealed session key lives in an HttpOnly cookie, never in the
session store (which is in the database). A refusal the user can fix (a wrong code, a
weak password, an expired link) is shown on the page (:func:`_form_error`,
:func:`_message_error`); anything else becomes an error page (PortalErrorMiddleware).
"""

from __future__ import annotations

import base64
import functools
import io

import qrcode
import qrcode.image.svg
from django import forms
from django.contrib import messages
from django.contrib.auth import login, logout, update_session_auth_hash
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from rest_framework.exceptions import NotAuthenticated

from accounts import services
from accounts.models import (
    EMAIL_CODE_DIGITS,
    TOTP_DIGITS,
    AuthSessionKind,
    AuthSessionState,
    TOTPDevice,
)
from accounts.selectors import invite_get_by_token, user_projects_summary, user_sessions_live
from accounts.services.agreement import agreement_accept, agreement_required, agreement_version
from accounts.sessions import (
    PORTAL_KEY_COOKIE,
    PORTAL_SESSION_KEY,
    live_session,
    portal_cookie_kwargs,
    session_key_for_client,
    session_key_from_client,
)
from accounts.validators import MAX_LENGTH, PasswordPolicyValidator
from core.client_ip import client_ip
from core.errors import DDSError
from core.sealing import SealError, seal, unseal
from core.throttling import throttle_check

PENDING_KEY = "dds_pending_sid"
INVITE_COOKIE = "dds_invite"
INVITE_COOKIE_PURPOSE = "invite-token-cookie"


#: Errors a page shows to the user as a message (their text says what to fix).
SHOWN_ERRORS = (DDSError, ValidationError)
KEY_SESSION_ENDED = "Your key session has ended: log in again."


def _messages_of(exc: DDSError | ValidationError) -> list[str]:
    return exc.messages if isinstance(exc, ValidationError) else [exc.message]


def _form_error(form: forms.Form, exc: DDSError | ValidationError) -> None:
    """Show a refusal on the form: field errors at their field, the rest above it."""
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        for name, errs in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, errs)
    else:
        form.add_error(None, _messages_of(exc))


def _message_error(request, exc: DDSError | ValidationError) -> None:
    """Show a refusal as a message on the page the browser goes back to."""
    messages.error(request, " ".join(_messages_of(exc)))


def _page(request, title: str, form: forms.Form, *, submit: str, intro: str = "",
          status: int = 200, links=()):
    return render(request, "accounts/form.html", {"title": title, "form": form,
                                                  "submit": submit, "intro": intro,
                                                  "links": links}, status=status)


def portal_session_live(request) -> bool:
    """A logged-in, second-factor verified user whose key session is still live.

    The portal and the admin both ask this, so ending a session (logout elsewhere,
    password change, deactivation, absolute lifetime) ends it everywhere at once.
    """
    user = request.user
    sid = request.session.get(PORTAL_SESSION_KEY)
    return bool(user.is_authenticated and user.is_verified() and sid
                and live_session(public_id=sid, user_id=user.pk))


def portal_login_required(view):
    """A logged-in, second-factor verified user with a live key session."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not portal_session_live(request):
            logout(request)
            return redirect(f"{reverse('accounts:login')}?next={request.path}")
        return view(request, *args, **kwargs)

    return wrapper


# --------------------------------------------------------------------------- login


class LoginForm(forms.Form):
    username = forms.CharField(max_length=150, widget=forms.TextInput(
        attrs={"autocomplete": "username", "autofocus": True}))
    password = forms.CharField(max_length=MAX_LENGTH * 4, strip=False, widget=forms.PasswordInput(
        attrs={"autocomplete": "current-password"}))


class CodeForm(forms.Form):
    code = forms.CharField(max_length=16, widget=forms.TextInput(
        attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}))


@require_http_methods(["GET", "POST"])
def login_view(request):
    form = LoginForm(request.POST or None)
    if request.method == "POST":
        throttle_check(request, "login")
    if request.method == "POST" and form.is_valid():
        try:
            challenge = services.login_start(kind=AuthSessionKind.PORTAL, ip=client_ip(request),
                                             **form.cleaned_data)
        except DDSError as exc:
            _form_error(form, exc)
            response = _page(request, "Log in", form, submit="Continue",
                             status=exc.status_code)
            if exc.retry_after:  # busy (core.kdf_limit.KdfBusy): when to retry
                response["Retry-After"] = str(int(exc.retry_after))
            return response
        request.session.cycle_key()
        request.session[PENDING_KEY] = challenge.session.public_id
        request.session["dds_next"] = request.GET.get("next", "")
        response = redirect("accounts:login-code")
        response.set_cookie(PORTAL_KEY_COOKIE, session_key_for_client(
            session=challenge.session, session_key=challenge.session_key),
            **portal_cookie_kwargs())
        return response
    return _page(request, "Log in", form, submit="Continue",
                 links=[(reverse("accounts:password-reset"), "Forgot your password?"),
                        (reverse("portal:troubleshooting"), "Trouble logging in?"),
                        (reverse("portal:technical"), "How your data is protected")])


@require_http_methods(["GET", "POST"])
def login_code_view(request):
    pending = live_session(public_id=request.session.get(PENDING_KEY, ""),
                           state=AuthSessionState.PENDING)
    if pending is None:
        return redirect("accounts:login")
    method = services.second_factor_method(pending.user)
    intro = (f"Enter the {EMAIL_CODE_DIGITS}-digit code we emailed you (valid "
             f"{services.email_code_minutes()} minutes)." if method == "email"
             else f"Enter the {TOTP_DIGITS}-digit code from your authenticator app.")
    form = CodeForm(request.POST or None)
    if request.method == "POST":
        throttle_check(request, "2fa")
    if request.method == "POST" and form.is_valid():
        try:
            session = services.login_verify(session=pending, code=form.cleaned_data["code"],
                                             ip=client_ip(request))
        except DDSError as exc:
            _form_error(form, exc)
            return _page(request, "Second factor", form, submit="Log in", intro=intro,
                         status=exc.status_code)
        next_url = request.session.get("dds_next") or reverse("portal:projects")
        login(request, session.user, backend="django.contrib.auth.backends.ModelBackend")
        otp_login(request, services.second_factor_device(session.user))
        request.session[PORTAL_SESSION_KEY] = session.public_id
        if not url_has_allowed_host_and_scheme(next_url, {request.get_host()},
                                               require_https=request.is_secure()):
            next_url = reverse("portal:projects")
        return HttpResponseRedirect(next_url)
    return _page(request, "Second factor", form, submit="Log in", intro=intro)


@require_POST
def logout_view(request):
    if request.user.is_authenticated:
        services.auth_logout(user=request.user, ip=client_ip(request))
    logout(request)
    response = redirect("accounts:login")
    response.delete_cookie(PORTAL_KEY_COOKIE)
    messages.info(request, "You are logged out everywhere.")
    return response


# --------------------------------------------------------------------------- agreement


class AgreementFields(forms.Form):
    """The explicit acceptance of the user agreement, and the version the page showed (a
    version changed between showing and posting is refused, not silently accepted)."""

    accept_agreement = forms.BooleanField(required=True, label="I accept the user agreement",
                                          error_messages={"required": (
                                              "Accept the user agreement to continue.")})
    agreement_version = forms.CharField(max_length=32, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        version = agreement_version()
        self.fields["agreement_version"].initial = version
        self.fields["accept_agreement"].label = (
            f"I have read and accept the user agreement (version {version})")


def _safe_next(request, default: str) -> str:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if next_url and url_has_allowed_host_and_scheme(next_url, {request.get_host()},
                                                    require_https=request.is_secure()):
        return next_url
    return default


@portal_login_required
@require_http_methods(["GET", "POST"])
def agreement_view(request):
    """Accept the user agreement in force (the portal sends here while it is not)."""
    next_url = _safe_next(request, reverse("portal:projects"))
    if not agreement_required(request.user):
        return HttpResponseRedirect(next_url)
    form = AgreementFields(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                agreement_accept(user=request.user,
                                 version=form.cleaned_data["agreement_version"],
                                 ip=client_ip(request))
            except SHOWN_ERRORS as exc:
                _form_error(form, exc)
            else:
                messages.success(request, "Thank you: the user agreement is accepted.")
                return HttpResponseRedirect(next_url)
        status = 400
    return render(request, "accounts/agreement.html", {
        "title": "The user agreement has changed", "form": form, "next": next_url,
        "agreement_version": agreement_version()}, status=status)


# --------------------------------------------------------------------------- registration


class RegisterForm(AgreementFields):
    username = forms.CharField(min_length=3, max_length=30, help_text=(
        "3–30 characters: letters, digits, dot, underscore or hyphen."))
    name = forms.CharField(max_length=255)
    password = forms.CharField(max_length=MAX_LENGTH, strip=False, widget=forms.PasswordInput(
        attrs={"autocomplete": "new-password"}),
        help_text=PasswordPolicyValidator().get_help_text())
    password_again = forms.CharField(max_length=MAX_LENGTH, strip=False,
                                     widget=forms.PasswordInput(
                                         attrs={"autocomplete": "new-password"}))
    field_order = ["username", "name", "password", "password_again", "accept_agreement",
                   "agreement_version"]

    def clean(self):
        data = super().clean() or {}
        if data.get("password") != data.get("password_again"):
            raise ValidationError("The passwords differ.")
        return data


def _invite_token_from_cookie(request) -> str:
    carried = request.COOKIES.get(INVITE_COOKIE, "")
    try:
        return unseal(base64.urlsafe_b64decode(carried.encode()),
                      purpose=INVITE_COOKIE_PURPOSE).decode()
    except (SealError, ValueError, TypeError, UnicodeDecodeError):
        return ""


@require_http_methods(["GET", "POST"])
def register_view(request):
    if "t" in request.GET:
        # Keep the invite secret out of the address bar and browser history, and out of
        # the session store (a database dump must not register anyone): it waits in an
        # HttpOnly cookie, sealed under the server key, scoped to this page.
        response = redirect("accounts:register")
        sealed = seal(request.GET["t"][:200].encode(), purpose=INVITE_COOKIE_PURPOSE)
        response.set_cookie(INVITE_COOKIE, base64.urlsafe_b64encode(sealed).decode(),
                            **{**portal_cookie_kwargs(), "max_age": 60 * 60,
                               "path": reverse("accounts:register")})
        return response
    token = _invite_token_from_cookie(request)
    invite = invite_get_by_token(token)
    if invite is None:
        return render(request, "accounts/message.html", {
            "title": "Invite not valid",
            "message": "This invite link is not valid or has expired. Ask for a new one."},
            status=400)
    if request.method == "POST":
        throttle_check(request, "register")
    form = RegisterForm(request.POST or None)
    intro = f"Register as {invite.get_role_display()} with {invite.email}."
    links = [(reverse("portal:terms"), "Read the user agreement"),
             (reverse("portal:privacy"), "Privacy policy")]
    if request.method == "POST" and form.is_valid():
        try:
            services.user_register(token=token, username=form.cleaned_data["username"],
                                   name=form.cleaned_data["name"],
                                   password=form.cleaned_data["password"],
                                   agreement_version=form.cleaned_data["agreement_version"],
                                   ip=client_ip(request))
        except SHOWN_ERRORS as exc:
            _form_error(form, exc)
            return _page(request, "Register", form, submit="Register", intro=intro, status=400,
                         links=links)
        messages.success(request, "Your account is ready: log in.")
        response = redirect("accounts:login")
        response.delete_cookie(INVITE_COOKIE, path=reverse("accounts:register"))
        return response
    if request.method == "POST":  # the form's own errors (e.g. the unticked agreement)
        return _page(request, "Register", form, submit="Register", intro=intro, status=400,
                     links=links)
    return _page(request, "Register", form, submit="Register", intro=intro, links=links)


# --------------------------------------------------------------------------- passwords


class ResetRequestForm(forms.Form):
    email = forms.EmailField(max_length=254)


class NewPasswordForm(forms.Form):
    new_password = forms.CharField(max_length=MAX_LENGTH, strip=False,
                                   widget=forms.PasswordInput(attrs={"autocomplete":
                                                                     "new-password"}))


class ChangePasswordForm(NewPasswordForm):
    current_password = forms.CharField(max_length=MAX_LENGTH * 4, strip=False,
                                       widget=forms.PasswordInput(
                                           attrs={"autocomplete": "current-password"}))
    field_order = ["current_password", "new_password"]


@require_http_methods(["GET", "POST"])
def password_reset_view(request):
    form = ResetRequestForm(request.POST or None)
    if request.method == "POST":
        throttle_check(request, "password_reset")
    if request.method == "POST" and form.is_valid():
        services.user_password_reset_request(email=form.cleaned_data["email"],
                                             ip=client_ip(request))
        return render(request, "accounts/message.html", {
            "title": "Check your email",
            "message": "If the address has an account, a reset link is on its way. "
                       "It is valid for one hour."})
    return _page(request, "Reset your password", form, submit="Send link", intro=(
        "A reset gives you a new key pair: you keep your projects but lose access to their "
        "data until someone with access restores it."))


@require_http_methods(["GET", "POST"])
def password_reset_confirm_view(request, uid: str, token: str):
    throttle_check(request, "reset_link")
    if services.password_reset_user(uid, token) is None:
        return render(request, "accounts/message.html", {
            "title": "Link not valid",
            "message": "The reset link is not valid, already used or older than an hour."},
            status=400)
    form = NewPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.user_password_reset(uid=uid, token=token, ip=client_ip(request),
                                         new_password=form.cleaned_data["new_password"])
        except SHOWN_ERRORS as exc:
            _form_error(form, exc)
            return _page(request, "Choose a new password", form, submit="Reset", status=400)
        messages.success(request, "Password reset: log in with the new one.")
        return redirect("accounts:login")
    return _page(request, "Choose a new password", form, submit="Reset")


@portal_login_required
@require_http_methods(["GET", "POST"])
def password_change_view(request):
    form = ChangePasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        session = live_session(public_id=request.session[PORTAL_SESSION_KEY],
                               user_id=request.user.pk)
        try:
            if session is None:
                raise ValidationError(KEY_SESSION_ENDED)
            try:
                key = session_key_from_client(
                    session_public_id=session.public_id,
                    carried=request.COOKIES.get(PORTAL_KEY_COOKIE, ""))
            except NotAuthenticated as exc:
                raise ValidationError(KEY_SESSION_ENDED) from exc
            services.user_password_change(user=request.user, keep=session, keep_key=key,
                                          ip=client_ip(request), **form.cleaned_data)
        except SHOWN_ERRORS as exc:
            _form_error(form, exc)
            return _page(request, "Change password", form, submit="Change", status=400)
        update_session_auth_hash(request, request.user)
        messages.success(request, "Password changed; your other sessions were ended.")
        return redirect("accounts:account")
    return _page(request, "Change password", form, submit="Change")


# --------------------------------------------------------------------------- account


def _qr_svg(uri: str) -> str:
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode()
    return svg[svg.index("<svg"):]


@portal_login_required
@require_http_methods(["GET"])
def account_view(request):
    user = request.user
    setup = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    context = {
        "projects": user_projects_summary(user),
        "method": services.second_factor_method(user),
        "setup": setup, "code_form": CodeForm(),
        "sessions": user_sessions_live(user),
        "current_session": request.session.get(PORTAL_SESSION_KEY),
    }
    if setup is not None:
        context["qr_svg"] = mark_safe(_qr_svg(setup.config_url))  # noqa: S308 - our own SVG
        context["secret"] = base64.b32encode(setup.bin_key).decode()
    return render(request, "accounts/account.html", context)


@portal_login_required
@require_POST
def totp_setup_view(request):
    services.totp_setup_start(user=request.user, ip=client_ip(request))
    return redirect("accounts:account")


@portal_login_required
@require_POST
def totp_confirm_view(request):
    form = CodeForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(f"Enter the {TOTP_DIGITS}-digit code.")
        services.totp_setup_confirm(user=request.user, code=form.cleaned_data["code"],
                                    ip=client_ip(request))
        messages.success(request, "Authenticator app enabled.")
    except SHOWN_ERRORS as exc:
        _message_error(request, exc)
    return redirect("accounts:account")


@portal_login_required
@require_POST
def totp_disable_request_view(request):
    try:
        services.totp_disable_request(user=request.user, ip=client_ip(request))
        messages.info(request, "Check your email to confirm turning the app off.")
    except SHOWN_ERRORS as exc:
        _message_error(request, exc)
    return redirect("accounts:account")


@portal_login_required
@require_http_methods(["GET", "POST"])
def totp_disable_view(request, token: str):
    if request.method == "POST":
        try:
            services.totp_disable(user=request.user, token=token, ip=client_ip(request))
            messages.success(request, "Authenticator app turned off; logins use email codes.")
        except SHOWN_ERRORS as exc:
            _message_error(request, exc)
        return redirect("accounts:account")
    return render(request, "accounts/confirm.html", {
        "title": "Turn off the authenticator app?", "submit": "Turn off",
        "message": "Logins will use codes sent to your email instead."})


@portal_login_required
@require_POST
def delete_request_view(request):
    try:
        services.user_self_delete_request(user=request.user, ip=client_ip(request))
        messages.info(request, "Check your email to confirm deleting your account.")
    except SHOWN_ERRORS as exc:
        _message_error(request, exc)
    return redirect("accounts:account")


@portal_login_required
@require_http_methods(["GET", "POST"])
def delete_view(request, token: str):
    if request.method == "POST":
        try:
            services.user_self_delete(user=request.user, token=token, ip=client_ip(request))
        except SHOWN_ERRORS as exc:
            _message_error(request, exc)
            return redirect("accounts:account")
        logout(request)
        response = render(request, "accounts/message.html", {
            "title": "Account deleted", "message": "Your account and keys are gone."})
        response.delete_cookie(PORTAL_KEY_COOKIE)
        return response
    return render(request, "accounts/confirm.html", {
        "title": "Delete your account?", "submit": "Delete my account",
        "message": "Your account, keys and project access are removed. This cannot be "
                   "undone."})

