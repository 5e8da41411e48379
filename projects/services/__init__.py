"""Writes for projects: creation, the status lifecycle, scheduling, members, invites,
access fixes — one sub-domain per module.

Every rule lives here; views, admin actions, Celery tasks and management commands call
these functions. This package names the public ones; code inside projects imports the
submodules.
"""

from projects.services.access import access_fix_grants, project_access_fix, user_access_fix
from projects.services.creation import (
    RECOMMENDED_UNIT_ADMINS,
    ProjectCreated,
    bucket_name_for,
    project_create,
    project_create_with_members,
    project_update,
    unit_admin_check,
)
from projects.services.invites import invite_accepted_memberships, invite_to_project
from projects.services.lifecycle import (
    MAX_RERELEASES,
    TRANSITIONS,
    deadline_days_check,
    project_archive,
    project_delete,
    project_expire,
    project_extend,
    project_lock,
    project_release,
    project_retract,
)
from projects.services.members import (
    project_member_add,
    project_member_revoke,
    project_member_set_owner,
)
from projects.services.scheduling import (
    projects_archive_due,
    projects_expire_due,
    run_each_project,
)

__all__ = [
    "MAX_RERELEASES", "RECOMMENDED_UNIT_ADMINS", "TRANSITIONS", "ProjectCreated",
    "access_fix_grants", "bucket_name_for", "deadline_days_check",
    "invite_accepted_memberships", "invite_to_project", "project_access_fix",
    "project_archive", "project_create", "project_create_with_members", "project_delete",
    "project_expire", "project_extend", "project_lock", "project_member_add",
    "project_member_revoke", "project_member_set_owner", "project_release",
    "project_retract", "project_update", "projects_archive_due", "projects_expire_due",
    "run_each_project", "unit_admin_check", "user_access_fix",
]
