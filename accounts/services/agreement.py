"""The user agreement: accepted at registration, asked again when its version changes.

The text is a template (``templates/portal/public/_terms_text.html``, shown at /terms/ and
on the acceptance page); its version is the setting ``DDS_USER_AGREEMENT_VERSION``
(accounts.models.user_agreement_version). Each acceptance is a row of
:class:`AgreementAcceptance` (the history) and an audit event, and moves
``User.agreement_version`` (the one value every check compares, so checking costs no
query). A user whose version is not the one in force is sent to the portal's acceptance
page (portal.middleware.AgreementMiddleware) and gets no new API tokens (accounts.api).
"""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.errors import AgreementRequired
from accounts.models import AgreementAcceptance, AuthSession, User, user_agreement_version
from accounts.services.auth import auth_session_end
from accounts.services.links import site_link
from audit.actions import AuditAction
from audit.services import audit_record

#: Where a person reads the agreement, and where a logged-in user accepts a new version.
AGREEMENT_TEXT_PATH = "/terms/"
AGREEMENT_ACCEPT_PATH = "/accounts/agreement/"


def agreement_version() -> str:
    """The version of the user agreement in force."""
    return user_agreement_version()


def agreement_required(user: AbstractBaseUser | AnonymousUser) -> bool:
    """True for a logged-in user who has not accepted the version in force."""
    return bool(user.is_authenticated and isinstance(user, User)
                and user.agreement_version != agreement_version())


def agreement_version_check(version: str | None, *, field: str = "accept_agreement") -> str:
    """The version a person accepted, if it is the one in force (a field error otherwise)."""
    current = agreement_version()
    if not version:
        raise ValidationError({field: "Accept the user agreement (version "
                                      f"{current}, at {AGREEMENT_TEXT_PATH}) to continue."})
    if version != current:
        raise ValidationError({field: f"The user agreement is now version {current}: read "
                                      f"it at {AGREEMENT_TEXT_PATH} and accept it again."})
    return current


@transaction.atomic
def agreement_accept(*, user: User, version: str | None, ip: str | None = None,
                     at_registration: bool = False) -> AgreementAcceptance:
    """Record that ``user`` accepted ``version`` (which must be the one in force)."""
    version = agreement_version_check(version)
    acceptance, created = AgreementAcceptance.objects.get_or_create(user=user,
                                                                    version=version)
    if user.agreement_version != version:
        user.agreement_version = version
        user.save(update_fields=["agreement_version"])
    if created:
        audit_record(action=AuditAction.AGREEMENT_ACCEPT, actor=user, target=user.username,
                     ip=ip, details={"version": version, "at_registration": at_registration})
    return acceptance


def agreement_token_check(*, session: AuthSession, ip: str | None = None) -> None:
    """Refuse API tokens to a user who has not accepted the agreement in force.

    Checked when tokens are issued (second factor, refresh), not on every call: an access
    token issued before the version changed works until it expires (minutes). The session
    is ended, so nothing waits half-open; the user accepts in the portal and logs in again.
    """
    if not agreement_required(session.user):
        return
    auth_session_end(session=session, reason="agreement_required", ip=ip)
    url = site_link(AGREEMENT_ACCEPT_PATH)
    raise AgreementRequired(
        f"The user agreement changed (now version {agreement_version()}). Log in to the "
        f"portal and accept it at {url}, then log in here again.",
        version=agreement_version(), accept_url=url)
