"""Reads for accounts, and the helper that fetches *and* authorises another user."""

from __future__ import annotations

from django.db.models import Q
from django.http import Http404

from accounts.models import UNIT_ROLES, Role, User


def users_visible_to(actor: User):
    """Users the actor may look up: a unit's staff and the members of its projects; for a
    researcher, the members of their projects; a Super Admin sees everyone."""
    qs = User.objects.select_related("unit")
    if actor.role == Role.SUPER_ADMIN:
        return qs
    if actor.role in UNIT_ROLES:
        return qs.filter(Q(unit_id=actor.unit_id)
                         | Q(memberships__project__unit_id=actor.unit_id)).distinct()
    return qs.filter(Q(pk=actor.pk) | Q(memberships__project__memberships__user=actor)).distinct()


def user_get_for_actor(*, actor: User, username: str) -> User:
    """Fetch a user the actor may see, else 404 (so other units' users are not confirmed)."""
    user = users_visible_to(actor).filter(username=username).first()
    if user is None:
        raise Http404("No such user.")
    return user


def user_projects_summary(user: User) -> list[dict]:
    rows = user.memberships.select_related("project").order_by("project__public_id")
    return [{"project": m.project.public_id, "title": m.project.title, "is_owner": m.is_owner}
            for m in rows]


def user_sessions_live(user: User):
    """The user's logged-in sessions (portal and API), newest first."""
    from django.utils import timezone

    from accounts.models import AuthSession, AuthSessionState

    return AuthSession.objects.filter(user=user, state=AuthSessionState.ACTIVE,
                                      ended_at__isnull=True,
                                      expires_at__gt=timezone.now()).order_by("-created_at")
