"""Every action the audit log records, in one registry.

``audit.services.audit_record`` accepts only these, so a typo cannot create a new kind of
event that no report or alert knows about. The value is what is stored (and what
docs/audit.md lists); add a member here before recording something new.
"""

from django.db import models


class AuditAction(models.TextChoices):
    # The log itself.
    AUDIT_RECHAIN = "audit.rechain", "Audit chains rebuilt (migration)"
    # Logins and second factors (accounts).
    AUTH_LOGIN = "auth.login", "Logged in"
    AUTH_FAILURE = "auth.failure", "Login failed"
    AUTH_LOCK = "auth.lock", "Login locked"
    AUTH_PASSWORD_OK = "auth.password_ok", "Password accepted (second factor pending)"
    AUTH_CODE_RESEND = "auth.code_resend", "Login code sent again"
    AUTH_REFRESH = "auth.refresh", "Session refreshed"
    AUTH_SESSION_END = "auth.session_end", "Session ended"
    AUTH_SESSIONS_END = "auth.sessions_end", "All sessions ended"
    AUTH_TOTP_SETUP_START = "auth.totp_setup_start", "Authenticator app set-up started"
    AUTH_TOTP_ENABLE = "auth.totp_enable", "Authenticator app enabled"
    AUTH_TOTP_DISABLE_REQUEST = "auth.totp_disable_request", "Authenticator removal asked"
    AUTH_TOTP_DISABLE = "auth.totp_disable", "Authenticator app removed"
    AUTH_SECOND_FACTOR_RESET = "auth.second_factor_reset", "Second factor reset by an admin"
    # Units, users and invites (accounts).
    UNIT_CREATE = "unit.create", "Unit created"
    UNIT_UPDATE = "unit.update", "Unit changed"
    USER_CREATE = "user.create", "User created"
    USER_REGISTER = "user.register", "User registered"
    USER_ADMIN_EDIT = "user.admin_edit", "User edited in the admin"
    USER_DEACTIVATE = "user.deactivate", "User deactivated"
    USER_REACTIVATE = "user.reactivate", "User reactivated"
    USER_DELETE = "user.delete", "User deleted"
    USER_SELF_DELETE_REQUEST = "user.self_delete_request", "Account deletion asked"
    USER_SELF_DELETE = "user.self_delete", "Account deleted by its user"
    USER_PASSWORD_CHANGE = "user.password_change", "Password changed"
    USER_PASSWORD_RESET_REQUEST = "user.password_reset_request", "Password reset asked"
    USER_PASSWORD_RESET = "user.password_reset", "Password reset"
    INVITE_CREATE = "invite.create", "Invite sent"
    INVITE_ADD_PROJECT = "invite.add_project", "Project added to a pending invite"
    INVITE_EXPIRE = "invite.expire", "Expired invites deleted"
    INVITE_CANCEL = "invite.cancel", "Pending invite cancelled"
    AGREEMENT_ACCEPT = "agreement.accept", "User agreement accepted"
    # Announcements and maintenance.
    MOTD_ADD = "motd.add", "Message of the day added"
    MOTD_DEACTIVATE = "motd.deactivate", "Message of the day deactivated"
    MOTD_SEND = "motd.send", "Message of the day emailed"
    MAINTENANCE_ON = "maintenance.on", "Maintenance mode switched on"
    MAINTENANCE_OFF = "maintenance.off", "Maintenance mode switched off"
    # Projects.
    PROJECT_CREATE = "project.create", "Project created"
    PROJECT_UPDATE = "project.update", "Project updated"
    PROJECT_RELEASE = "project.release", "Project released"
    PROJECT_RERELEASE = "project.rerelease", "Expired project released again"
    PROJECT_RETRACT = "project.retract", "Project retracted"
    PROJECT_EXTEND = "project.extend", "Project deadline extended"
    PROJECT_EXPIRE = "project.expire", "Project expired"
    PROJECT_ARCHIVE = "project.archive", "Project archived"
    PROJECT_DELETE = "project.delete", "Project deleted"
    PROJECT_STORAGE_PURGE = "project.storage_purge", "Project storage purged"
    PROJECT_MEMBER_ADD = "project.member_add", "Member added"
    PROJECT_MEMBER_OWNER = "project.member_owner", "Member made owner (or not)"
    PROJECT_MEMBER_REVOKE = "project.member_revoke", "Member removed"
    PROJECT_ACCESS_FIX = "project.access_fix", "Project keys granted again"
    PROJECT_KEY_ROTATION_START = "project.key_rotation.start", "Project key rotation started"
    PROJECT_KEY_ROTATION_FINISH = "project.key_rotation.finish", "Project key rotated"
    # Data (transfers).
    STORAGE_LOCATION_SAVE = "storage_location.save", "Storage location saved"
    UPLOAD_START = "upload.start", "Upload started"
    UPLOAD_ABORT = "upload.abort", "Upload aborted"
    FILE_UPLOAD = "file.upload", "File uploaded"
    FILE_DOWNLOAD = "file.download", "File downloaded"
    FILE_REMOVE = "file.remove", "File removed"
    FOLDER_REMOVE = "folder.remove", "Folder removed"
    USAGE_RECORD = "usage.record", "Monthly usage recorded"
    QUOTA_WARNING = "quota.warning", "Unit warned about its quota"
    STORAGE_RECONCILE = "storage.reconcile", "Storage reconciled with the catalogue"
    FILE_LOST = "file.lost", "File found missing from storage"
    # Reports.
    USAGE_REPORT = "usage.report", "Usage report sent"
    STATS_SNAPSHOT = "stats.snapshot", "Statistics snapshot taken"
