"""Signals accounts sends to the apps above it.

Why a signal and not a call: registration belongs to accounts, but what an accepted
invite means for a *project* (a membership, owner or not) is the projects app's rule,
and accounts sits below projects (docs/architecture.md). The receiver runs inside the
registration's transaction, so the account, its keys and its memberships commit (or
roll back) together — which an interface calling projects afterwards could not promise.
"""

from __future__ import annotations

from django.dispatch import Signal

#: Sent by accounts.services.registration inside its transaction, once the invite's
#: project keys are the new user's. Keyword arguments: ``invite`` (accounts.Invite, about
#: to be deleted), ``user`` (the new accounts.User) and ``projects``: a list of
#: ``(project, is_owner)`` for every project key the user received.
#: Receiver: projects.services.invites.invite_accepted_memberships (ProjectsConfig.ready).
invite_accepted = Signal()
