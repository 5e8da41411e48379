"""Moved to :mod:`transfers.services.rotation`; this name stays only until keys.api and
keys' key_rotations_resume command import from ``transfers.services`` (helper A)."""

from transfers.services.rotation import project_key_rotation_run, project_key_rotation_start

__all__ = ["project_key_rotation_run", "project_key_rotation_start"]
