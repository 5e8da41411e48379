"""Reads for accounts, and the helper that fetches *and* authorises another user."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from django.core.exceptions import PermissionDenied
from django.db.models import (
    Case,
    Exists,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.http import Http404
from django.utils import timezone

from accounts.models import (
    UNIT_ROLES,
    AuthSession,
    AuthSessionState,
    Invite,
    Role,
    TOTPDevice,
    Unit,
    User,
)
from core.errors import BadInput, NotFound
from keys.models import InviteProjectKey
from keys.services import invite_token_hash


def is_operator(user: object) -> bool:
    """The one rule of "operator-only" actions: an active, signed-in Super Admin.

    Statistics, announcements and maintenance mode, second-factor resets and every other
    operator-only API ask this (through ``accounts.api.OperatorOnly`` or a service)."""
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_active", False)
                and getattr(user, "role", None) == Role.SUPER_ADMIN)


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


def with_second_factor(users: QuerySet[User]) -> QuerySet[User]:
    """Annotate ``has_totp``: a confirmed authenticator app (else logins use email codes)."""
    return users.annotate(has_totp=Exists(TOTPDevice.objects.filter(user=OuterRef("pk"),
                                                                    confirmed=True)))


#: The most users one search answers (a support look-up, not an export).
USER_FIND_LIMIT = 50


def users_find(*, actor: User, query: str, unit: Unit | None = None) -> list[User]:
    """Users the actor may see whose username or email is ``query`` (case-insensitive),
    then those whose username starts with it (only ``unit``'s staff, if given); at most
    :data:`USER_FIND_LIMIT`.

    Only users the actor may already see are searched (:func:`users_visible_to`): for an
    address outside that, the answer is the same empty list as for one nobody has.
    """
    query = (query or "").strip()
    if not query:
        raise BadInput("Give a username or an email address to look for.")
    if len(query) > 254:
        raise BadInput("That is longer than any username or email address.")
    exact = Q(username__iexact=query) | Q(email__iexact=query)
    match = exact if "@" in query else exact | Q(username__istartswith=query)
    users = users_visible_to(actor) if unit is None else users_visible_to(actor).filter(
        unit=unit)
    rows = (with_second_factor(users).filter(match)
            .annotate(rank=Case(When(exact, then=Value(0)), default=Value(1),
                                output_field=IntegerField()))
            .order_by("rank", "username"))
    return list(rows[:USER_FIND_LIMIT])


def unit_find(ident: str, *, among: QuerySet[Unit] | None = None) -> Unit:
    """The unit ``ident`` names: its name, its internal ref (in any case) or its public id.

    The one rule for every unit a person types: the API's ``unit`` fields, ``dds ... --unit``
    and the management commands' ``--unit``. ``among`` limits the search (the units an
    actor may see): a unit outside it gets the same 404 as one that does not exist. A
    name that is also another unit's ref names two units; that is refused, not guessed.
    """
    ident = (ident or "").strip()
    units = Unit.objects.all() if among is None else among
    found = list(units.filter(Q(name=ident) | Q(internal_ref__iexact=ident)
                              | Q(public_id=ident)).order_by("pk")[:2]) if ident else []
    if not found:
        raise NotFound(f"No such unit: {ident!r:.60} (give its name, internal ref or "
                       "public id).")
    if len(found) > 1:
        raise BadInput(f"{ident!r:.60} names more than one unit: give its public id.")
    return found[0]


def unit_get_for_actor(*, actor: User, name: str) -> Unit:
    """A unit the actor may see (:func:`units_visible_to`), by :func:`unit_find`'s rule."""
    return unit_find(name, among=units_visible_to(actor))


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


@dataclass(frozen=True)
class PendingInvite:
    """An invite not yet used, as support staff see it (only the projects they may see)."""

    email: str
    role: str
    unit: str | None
    projects: list[str]
    invited_by: str | None
    created_at: datetime
    expires_at: datetime

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()


def invites_visible_q(actor: User) -> Q:
    """Which invites the actor may list and cancel: every one for a Super Admin; for unit
    staff, invites to their unit and invites carrying one of its projects."""
    if actor.role == Role.SUPER_ADMIN:
        return Q()
    if actor.role in UNIT_ROLES and actor.unit_id:
        return (Q(unit_id=actor.unit_id) | Q(project__unit_id=actor.unit_id)
                | Q(project_keys__project__unit_id=actor.unit_id))
    raise PermissionDenied("Only unit staff and operators can list invites; a project's "
                           "pending invites are among its members (dds user ls -p).")


def invite_inviter_shown(actor: User, invite: Invite) -> str | None:
    """Who made the invite, for a Super Admin or the inviter's own unit only: another
    unit sharing the invite does not learn that unit's staff usernames."""
    by = invite.created_by
    if by is None:
        return None
    if actor.role == Role.SUPER_ADMIN or (by.unit_id is not None and by.unit_id == actor.unit_id):
        return by.username
    return None


def invite_project_shown(actor: User, invite: Invite) -> bool:
    """Whether the invite's own project may be shown to the actor: a Super Admin's, or
    one of the actor's unit (another unit sharing the invite does not see it)."""
    project = invite.project
    return project is not None and (actor.role == Role.SUPER_ADMIN
                                    or project.unit_id == actor.unit_id)


def invites_pending(actor: User) -> list[PendingInvite]:
    """The invites the actor may see (:func:`invites_visible_q`), newest first, with the
    projects each carries (for unit staff, only their unit's projects)."""
    visible = invites_visible_q(actor)
    keys = InviteProjectKey.objects.select_related("project").order_by("project__public_id")
    if actor.role != Role.SUPER_ADMIN:
        keys = keys.filter(project__unit=actor.unit)
    ids = Invite.objects.filter(visible).values("pk")
    invites = (Invite.objects.filter(pk__in=ids)
               .select_related("unit", "created_by", "project")
               .prefetch_related(Prefetch("project_keys", queryset=keys))
               .order_by("-created_at", "email"))
    rows = []
    for invite in invites:
        projects = [key.project.public_id for key in invite.project_keys.all()]
        own = invite.project
        if (own is not None and invite_project_shown(actor, invite)
                and own.public_id not in projects):
            projects.insert(0, own.public_id)
        rows.append(PendingInvite(
            email=invite.email, role=invite.role,
            unit=invite.unit.name if invite.unit else None, projects=projects,
            invited_by=invite_inviter_shown(actor, invite),
            created_at=invite.created_at, expires_at=invite.expires_at))
    return rows


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
