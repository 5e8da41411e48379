from __future__ import annotations

import base64
import hmac
import os
import secrets
import time
from datetime import timedelta
from urllib.parse import quote, urlencode

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django_otp.models import Device
from django_otp.oath import TOTP

from core.sealing import keyed_hash, seal, unseal

USERNAME_VALIDATOR = RegexValidator(
    r"^[A-Za-z0-9._-]{3,30}$",
    "Use 3–30 characters: letters, digits, dot, underscore or hyphen.",
)
UNIT_REF_VALIDATOR = RegexValidator(
    r"^[a-z0-9]{2,10}$", "Use 2–10 lower-case letters or digits."
)


#: The longest a project stays Available: a release's or extension's deadline is at most
#: this many days away (projects.services.lifecycle), and no unit's default period (nor
#: its Expired period) is longer.
MAX_DAYS_AVAILABLE = 90


def new_public_id() -> str:
    return secrets.token_urlsafe(16)


def user_agreement_version() -> str:
    """The version of the user agreement in force (``DDS_USER_AGREEMENT_VERSION``).

    The one accessor of the setting: the default of :attr:`User.agreement_version` and the
    rules of accounts.services.agreement read it here.
    """
    return str(getattr(settings, "DDS_USER_AGREEMENT_VERSION", "1"))


class Unit(models.Model):
    """A facility that delivers data (e.g. a sequencing platform)."""

    public_id = models.CharField(max_length=32, unique=True, default=new_public_id,
                                 editable=False)
    name = models.CharField(max_length=255, unique=True)
    display_name = models.CharField(max_length=255)
    contact_email = models.EmailField()
    internal_ref = models.CharField(
        max_length=10, unique=True, validators=[UNIT_REF_VALIDATOR],
        help_text="Prefix of this unit's project ids, e.g. 'ngi' gives 'ngi-00001'.",
    )
    days_in_available = models.PositiveSmallIntegerField(
        default=MAX_DAYS_AVAILABLE,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DAYS_AVAILABLE)])
    days_in_expired = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(MAX_DAYS_AVAILABLE)])
    quota_bytes = models.PositiveBigIntegerField(default=100 * 1024**4)
    warning_level = models.FloatField(
        default=0.8, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Fraction of the quota at which staff are warned.")
    #: When the unit last crossed its warning level and was warned; None while below it
    #: (the next crossing warns again).
    quota_warned_at = models.DateTimeField(null=True, blank=True, editable=False)
    billing_email = models.EmailField(
        blank=True, db_default="",
        help_text="Where the monthly usage report goes (empty: the contact email).")
    price_per_gb_month = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True,
        validators=[MinValueValidator(0)],
        help_text="Price of storing one GB for one month, in the site's currency "
                  "(DDS_CURRENCY), for invoices. Empty: usage is reported without cost.")
    project_counter = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.display_name or self.name


class Role(models.TextChoices):
    SUPER_ADMIN = "super_admin", "Super Admin"
    UNIT_ADMIN = "unit_admin", "Unit Admin"
    UNIT_PERSONNEL = "unit_personnel", "Unit Personnel"
    RESEARCHER = "researcher", "Researcher"


UNIT_ROLES = (Role.UNIT_ADMIN, Role.UNIT_PERSONNEL)
STAFF_ROLES = (Role.SUPER_ADMIN, Role.UNIT_ADMIN, Role.UNIT_PERSONNEL)


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, username: str, email: str, password: str | None = None,
                    **extra) -> User:
        user = self.model(username=username, email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_superuser(self, username: str, email: str, password: str | None = None,
                         **extra) -> User:
        extra["role"] = Role.SUPER_ADMIN
        extra.setdefault("name", username)
        return self.create_user(username, email, password, **extra)


# django-stubs cannot follow the reverse managers of django-otp's untyped Device base.
class User(AbstractBaseUser):  # type: ignore[django-manager-missing]
    """Every account. The role decides what the user may do; unit staff belong to a unit.

    There is deliberately no PermissionsMixin: permissions follow from the role (the
    services, selectors and scoped admins decide), not from per-user grants that could
    drift.
    """

    username = models.CharField(max_length=30, unique=True, validators=[USERNAME_VALIDATOR])
    email = models.EmailField()
    name = models.CharField(max_length=255)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.RESEARCHER)
    unit = models.ForeignKey(Unit, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="staff")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now, editable=False)
    # Key pair (security model point 4). The private key is AES-256-GCM encrypted under a
    # key derived from the password with Argon2id; the server never stores it in clear.
    public_key = models.BinaryField(null=True, blank=True, editable=False)
    private_key_encrypted = models.BinaryField(null=True, blank=True, editable=False)
    kdf_salt = models.BinaryField(null=True, blank=True, editable=False)
    kdf_params = models.JSONField(default=dict, blank=True, editable=False)
    # Bumped to end every session of the user at once (logout everywhere, password
    # change/reset, deactivation).
    session_generation = models.PositiveIntegerField(default=0, editable=False)
    # The user agreement version this account is held to: the one last accepted (at
    # registration or on the portal's acceptance page; AgreementAcceptance keeps the
    # history). An account made outside registration (the admin, createsuperuser) starts
    # at the version in force, so it is asked again only when the version changes.
    # db_default: a row inserted by the previous release's code during a roll-out (it
    # knows no such column) has accepted nothing, so it is asked.
    agreement_version = models.CharField(max_length=32, default=user_agreement_version,
                                         db_default="", editable=False)

    objects = UserManager()

    # Password hashes are Argon2 (memory-hard) too: they draw on the same per-process
    # memory budget as the KEK derivations (core.kdf_limit), so no path is unbounded.
    # core.kdf_limit is imported when first used: it loads DRF (core.errors), and DRF's
    # settings import the authentication classes, which import this module — at app
    # loading this module is not finished yet.
    def set_password(self, raw_password: str | None) -> None:
        from core.kdf_limit import kdf_slot, password_hasher_memory_kib  # noqa: PLC0415

        with kdf_slot(password_hasher_memory_kib()):
            super().set_password(raw_password)

    def check_password(self, raw_password: str | None) -> bool:
        from core.kdf_limit import kdf_slot, password_hasher_memory_kib  # noqa: PLC0415

        with kdf_slot(password_hasher_memory_kib()):
            return super().check_password(raw_password)

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["email"]

    class Meta:
        ordering = ["username"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_unique_ci"),
            models.CheckConstraint(
                condition=(
                    models.Q(role__in=[r.value for r in UNIT_ROLES], unit__isnull=False)
                    | (~models.Q(role__in=[r.value for r in UNIT_ROLES])
                       & models.Q(unit__isnull=True))
                ),
                name="user_unit_iff_unit_role",
            ),
        ]

    def __str__(self) -> str:
        return self.username

    @property
    def is_superuser(self) -> bool:
        return self.role == Role.SUPER_ADMIN

    @property
    def is_staff(self) -> bool:
        """Facility staff and operators may open the Django admin."""
        return self.role in STAFF_ROLES

    @property
    def is_unit_staff(self) -> bool:
        return self.role in UNIT_ROLES

    # Deny by default: no per-model permission exists. The admin serves only our scoped
    # model admins (accounts.admin_base.ScopedAdmin), whose has_*_permission decide by
    # role and unit; anything that falls back to these answers gets "no".
    def has_perm(self, perm: str, obj=None) -> bool:
        return False

    def has_perms(self, perm_list, obj=None) -> bool:
        return False

    def has_module_perms(self, app_label: str) -> bool:
        return False

    def _get_session_auth_hash(self, secret=None):
        # Portal sessions carry this hash; mixing in session_generation means that
        # bumping it (logout everywhere, reset, deactivation) ends every portal session at
        # once, just as a password change does in stock Django.
        key_salt = "accounts.User.get_session_auth_hash"
        return salted_hmac(key_salt, f"{self.password}:{self.session_generation}",
                           secret=secret, algorithm="sha256").hexdigest()


class AgreementAcceptance(models.Model):
    """One acceptance of the user agreement by a user: which version, and when."""

    user = models.ForeignKey(User, on_delete=models.CASCADE,
                             related_name="agreement_acceptances")
    version = models.CharField(max_length=32)
    accepted_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-accepted_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "version"],
                                    name="agreement_accepted_once_per_version"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} accepted version {self.version}"


class Invite(models.Model):
    """An invitation to register (or, for an existing user, to join a project).

    Carries its own key pair so project access can be granted before the invitee has a
    password (security model point 5); the private key is sealed until registration.
    """

    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.RESEARCHER)
    unit = models.ForeignKey(Unit, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="invites")
    project = models.ForeignKey("projects.Project", null=True, blank=True,
                                on_delete=models.CASCADE, related_name="invites")
    is_owner = models.BooleanField(default=False)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    # Only a hash of the emailed token is kept: a database dump cannot accept invites.
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True,
                                  editable=False)
    public_key = models.BinaryField(null=True, blank=True, editable=False)
    private_key_encrypted = models.BinaryField(null=True, blank=True, editable=False)
    kdf_salt = models.BinaryField(null=True, blank=True, editable=False)
    kdf_params = models.JSONField(default=dict, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Re-inviting replaces the earlier invite.
            models.UniqueConstraint(Lower("email"), name="invite_email_unique_ci"),
        ]
        indexes = [models.Index(fields=["expires_at"], name="invite_expires_idx")]

    def __str__(self) -> str:
        return f"Invite for {self.email}"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()


class MOTD(models.Model):
    """A message of the day, shown in the portal and by the CLI."""

    message = models.TextField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "message of the day"
        verbose_name_plural = "messages of the day"

    def __str__(self) -> str:
        return self.message[:60]


class Maintenance(models.Model):
    """Maintenance mode: one row; while active only super admins may use the system."""

    is_active = models.BooleanField(default=False)
    message = models.TextField(blank=True, default="The system is under maintenance.")
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "maintenance mode"
        verbose_name_plural = "maintenance mode"
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="maintenance_singleton"),
        ]

    def __str__(self) -> str:
        return "Maintenance: on" if self.is_active else "Maintenance: off"

    @classmethod
    def current(cls) -> Maintenance:
        obj, _ = cls.objects.get_or_create(id=1)
        return obj


class AuthSessionKind(models.TextChoices):
    API = "api", "API token"
    PORTAL = "portal", "Web portal"


class AuthSessionState(models.TextChoices):
    PENDING = "pending", "Waiting for the second factor"
    ACTIVE = "active", "Active"


class AuthSession(models.Model):
    """One login (API token family or portal session) and its sealed key session.

    ``kek_sealed`` is the user's key-encryption key encrypted under a random per-session
    key that is *not* stored here: it travels only inside the client's token (or portal
    cookie), itself sealed under the server key. A database dump therefore holds no usable
    KEK, a stolen token without the server secret opens nothing, and ending the session
    (erasing ``kek_sealed``) makes the token useless even with the server secret.
    """

    public_id = models.CharField(max_length=32, unique=True, default=new_public_id,
                                 editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="auth_sessions")
    kind = models.CharField(max_length=10, choices=AuthSessionKind.choices)
    state = models.CharField(max_length=10, choices=AuthSessionState.choices,
                             default=AuthSessionState.PENDING)
    kek_sealed = models.BinaryField(null=True, blank=True, editable=False)
    # Which refresh token of the family is current; an older one coming back means the
    # family leaked, so the whole session is ended.
    refresh_counter = models.PositiveIntegerField(default=0)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "ended_at"], name="authsession_user_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} session of {self.user_id} ({self.state})"

    @property
    def is_live(self) -> bool:
        return self.ended_at is None and self.expires_at > timezone.now()


class LoginThrottle(models.Model):
    """Failed password/code attempts per account or per client address.

    The key is a hash ("user:" + username, or "ip:" + address) so that a password typed
    into the username field never lands in the database in clear.
    """

    key = models.CharField(max_length=64, unique=True)
    failures = models.PositiveIntegerField(default=0)
    window_start = models.DateTimeField(default=timezone.now)
    locked_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.key[:12]}… {self.failures} failures"


# --------------------------------------------------------------------------- second factor
#
#: Digits of an emailed login code and of an authenticator app's code.
EMAIL_CODE_DIGITS = 8
TOTP_DIGITS = 6

# Our own django-otp devices (django-otp's plugins store TOTP keys and email codes in
# clear, so a dump plus a known password would pass the second factor). Verification is
# done by accounts.services.auth under a row lock, so a code is accepted at most once even by
# concurrent requests.


def _totp_purpose(user_id: int) -> str:
    # Bound to the user: a sealed key copied onto another user's row does not open.
    return f"totp-key:user:{user_id}"


class TOTPDevice(Device):
    """An authenticator app (RFC 6238, SHA-1, as every app supports).

    The shared key is sealed under the server key (core.sealing); ``last_t`` is the last
    accepted time step, so a code is never accepted twice.
    """

    key_sealed = models.BinaryField(editable=False)
    step = models.PositiveSmallIntegerField(default=30)
    t0 = models.BigIntegerField(default=0)
    digits = models.PositiveSmallIntegerField(default=TOTP_DIGITS)
    tolerance = models.PositiveSmallIntegerField(default=1)
    drift = models.SmallIntegerField(default=0)
    last_t = models.BigIntegerField(default=-1)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = "authenticator app"

    @classmethod
    def new(cls, *, user: User, name: str = "authenticator app") -> TOTPDevice:
        return cls.objects.create(user=user, name=name, confirmed=False,
                                  key_sealed=seal(os.urandom(20),
                                                  purpose=_totp_purpose(user.pk)))

    @property
    def bin_key(self) -> bytes:
        return unseal(bytes(self.key_sealed), purpose=_totp_purpose(self.user_id))

    @property
    def config_url(self) -> str:
        """The otpauth:// URI an authenticator app scans (shown once, at set-up)."""
        issuer = str(getattr(settings, "OTP_TOTP_ISSUER", "DDS")).replace(":", "")
        label = quote(f"{issuer}:{self.user.get_username()}")
        params = urlencode({"secret": base64.b32encode(self.bin_key).decode(),
                            "algorithm": "SHA1", "digits": self.digits, "period": self.step})
        return f"otpauth://totp/{label}?{params}&issuer={quote(issuer)}"

    def verify_token(self, token) -> bool:
        """Check a code and, if right, remember its time step. Call under a row lock."""
        try:
            value = int(str(token))
        except ValueError:
            return False
        totp = TOTP(self.bin_key, self.step, self.t0, self.digits, self.drift)
        totp.time = time.time()
        if not totp.verify(value, self.tolerance, self.last_t + 1):
            return False
        self.last_t, self.drift = totp.t(), totp.drift
        self.save(update_fields=["last_t", "drift"])
        return True


class EmailDevice(Device):
    """Login codes by email. Only a keyed hash of the pending code is stored."""

    code_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    valid_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "email code"

    def _hash(self, code: str) -> str:
        return keyed_hash(f"{self.pk}:{code}".encode(), purpose="email-code")

    def code_new(self, *, length: int, valid_secs: int) -> str:
        """A fresh random code (the previous one stops working); returned once, to mail."""
        code = "".join(secrets.choice("0123456789") for _ in range(length))
        self.code_hash = self._hash(code)
        self.valid_until = timezone.now() + timedelta(seconds=valid_secs)
        self.save(update_fields=["code_hash", "valid_until"])
        return code

    def verify_token(self, token) -> bool:
        """Check a code; a right one is used up. Call under a row lock."""
        code = str(token or "")
        if not (self.code_hash and self.valid_until and self.valid_until > timezone.now()):
            return False
        if not hmac.compare_digest(self.code_hash, self._hash(code)):
            return False
        self.code_hash, self.valid_until = "", None
        self.save(update_fields=["code_hash", "valid_until"])
        return True
