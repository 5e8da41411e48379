"""Links sent by email: the site's address, and signed one-hour confirmation tokens."""

from __future__ import annotations

from django.conf import settings
from django.core import signing

from accounts.errors import LinkInvalid
from accounts.models import User
from mail.services import mail_send_template

_CONFIRM_SALT = "accounts.confirm"
#: Confirmation links (turn off the authenticator app, delete the account) last an hour.
CONFIRM_MAX_AGE = 60 * 60


def site_link(path: str) -> str:
    """An absolute link to ``path`` on the public site (for emails)."""
    return f"{settings.DDS_PUBLIC_URL}{path}"


def confirmation_token(*, user: User, action: str) -> str:
    # Bound to the session generation: a password change or logout voids pending links.
    return signing.dumps({"u": user.pk, "a": action, "g": user.session_generation},
                         salt=_CONFIRM_SALT)


def confirmation_email(*, user: User, action: str, template: str, path: str) -> None:
    """Email ``user`` a one-hour link ``path<token>/`` that confirms ``action``."""
    token = confirmation_token(user=user, action=action)
    mail_send_template(template=template, to=[user.email],
                       context={"link": site_link(f"{path}{token}/")})


def confirmation_check(*, user: User, action: str, token: str) -> None:
    """Raise ``LinkInvalid`` unless ``token`` confirms ``action`` for ``user`` (unexpired)."""
    try:
        data = signing.loads(token or "", salt=_CONFIRM_SALT, max_age=CONFIRM_MAX_AGE)
    except signing.BadSignature as exc:
        raise LinkInvalid() from exc
    if data != {"u": user.pk, "a": action, "g": user.session_generation}:
        raise LinkInvalid()
