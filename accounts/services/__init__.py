"""Writes for units, users, invites, logins and key sessions, one sub-domain per module.

Views (API and portal), admin actions, Celery tasks and management commands call these;
no rule lives anywhere else. Every email is rendered from its templates and queued with
mail.services.mail_send_template (sealed, sent by a task after commit). This package
names the public functions; code inside accounts imports the submodules.
"""

from accounts.services.auth import (
    LoginChallenge,
    Refreshed,
    auth_logout,
    auth_session_end,
    auth_session_refresh,
    auth_sessions_end,
    email_code_minutes,
    login_code_resend,
    login_start,
    login_verify,
    second_factor_device,
    second_factor_method,
)
from accounts.services.deletion import user_self_delete, user_self_delete_request
from accounts.services.invites import (
    InviteResult,
    ProjectGrant,
    invite_create,
    invite_issue,
    invite_scope,
    invites_delete_expired,
)
from accounts.services.links import confirmation_check, confirmation_token
from accounts.services.lockout import (
    login_failure_record,
    login_lock_check,
    throttle_keys,
)
from accounts.services.passwords import (
    password_reset_link,
    password_reset_user,
    user_password_change,
    user_password_reset,
    user_password_reset_request,
)
from accounts.services.registration import user_register, username_check
from accounts.services.totp import (
    totp_disable,
    totp_disable_request,
    totp_setup_confirm,
    totp_setup_start,
    user_second_factor_reset,
)
from accounts.services.units import (
    UNIT_EDITABLE_FIELDS,
    UNIT_OPERATOR_FIELDS,
    UNIT_STAFF_FIELDS,
    unit_create,
    unit_fields_editable,
    unit_update,
    unit_update_check,
)
from accounts.services.users import (
    MIN_UNIT_ADMINS,
    unit_admins_keep_check,
    user_create,
    user_deactivate,
    user_delete,
    user_manage_check,
    user_reactivate,
)

__all__ = [
    "MIN_UNIT_ADMINS", "UNIT_EDITABLE_FIELDS", "UNIT_OPERATOR_FIELDS", "UNIT_STAFF_FIELDS",
    "InviteResult", "LoginChallenge", "ProjectGrant", "Refreshed",
    "auth_logout", "auth_session_end", "auth_session_refresh", "auth_sessions_end",
    "confirmation_check", "confirmation_token", "email_code_minutes", "invite_create",
    "invite_issue", "invite_scope", "invites_delete_expired", "login_code_resend",
    "login_failure_record", "login_lock_check", "login_start", "login_verify",
    "password_reset_link", "password_reset_user", "second_factor_device",
    "second_factor_method", "throttle_keys", "totp_disable", "totp_disable_request",
    "totp_setup_confirm", "totp_setup_start", "unit_admins_keep_check", "unit_create",
    "unit_fields_editable", "unit_update", "unit_update_check",
    "user_create", "user_deactivate", "user_delete", "user_manage_check",
    "user_password_change", "user_password_reset", "user_password_reset_request",
    "user_reactivate", "user_register", "user_second_factor_reset", "user_self_delete",
    "user_self_delete_request", "username_check",
]
