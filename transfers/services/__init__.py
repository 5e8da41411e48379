"""Writes of the transfers app, one sub-domain per module:

- ``locations``: storage locations and their (sealed) credentials
- ``uploads``: starting uploads, part URLs, resuming, aborting, the quota reserved
- ``completion``: completing uploads into catalogued files
- ``catalogue``: folder totals, removing files and folders
- ``downloads``: headers re-addressed to the client and GET URLs
- ``usage``: byte-hours for invoicing
- ``purge``: emptying the storage of deleted and archived projects
- ``rotation``: project key rotation (it rewrites every file header)
- ``headers``: Crypt4GH header checks under the project key (uploads, downloads)
- ``quota``: quota warnings, one email per crossing of a unit's warning level
- ``reconcile``: the catalogue against storage (orphan and missing objects, stale and
  missing buckets; lost files flagged)

Storage calls happen inside the transaction *before* the rows that depend on them are
written, so a storage failure (``StorageUnavailable``, 503) rolls everything back and the
client can retry; objects that become garbage are deleted after commit.

This package names the public functions for callers in other apps; code inside transfers
imports from the modules.
"""

from transfers.services.catalogue import (
    files_remove,
    folder_remove,
    folder_remove_batches,
    folders_rebuild,
    objects_delete,
)
from transfers.services.completion import (
    CompleteInput,
    multipart_etag,
    upload_complete,
    uploads_complete,
)
from transfers.services.downloads import DOWNLOAD_BATCH_MAX, files_download_prepare
from transfers.services.locations import (
    storage_location_create_local,
    storage_location_save,
    storage_location_validate_jurisdiction,
)
from transfers.services.purge import (
    project_storage_cleanup,
    project_storage_purge,
    projects_storage_cleanup_due,
)
from transfers.services.quota import quota_check, quota_check_after_upload, quota_check_all
from transfers.services.reconcile import storage_reconcile, storage_reconcile_report_send
from transfers.services.rotation import project_key_rotation_run, project_key_rotation_start
from transfers.services.uploads import (
    MAX_OBJECT_BYTES,
    MAX_PARTS,
    PART_URL_BATCH_MAX,
    UPLOAD_BATCH_MAX,
    StartInput,
    part_size_for,
    upload_abort,
    upload_header_check,
    upload_part_urls,
    upload_parts_list,
    upload_start,
    uploads_abort_stale,
    uploads_first_part_urls,
    uploads_put_urls,
    uploads_start,
)
from transfers.services.usage import usage_record, usage_record_last_month

__all__ = [
    "DOWNLOAD_BATCH_MAX", "MAX_OBJECT_BYTES", "MAX_PARTS", "PART_URL_BATCH_MAX",
    "UPLOAD_BATCH_MAX", "CompleteInput", "StartInput", "files_download_prepare",
    "files_remove", "folder_remove", "folder_remove_batches", "folders_rebuild",
    "multipart_etag", "objects_delete", "part_size_for", "project_key_rotation_run",
    "project_key_rotation_start", "project_storage_cleanup", "project_storage_purge",
    "projects_storage_cleanup_due", "quota_check", "quota_check_after_upload",
    "quota_check_all", "storage_location_create_local", "storage_location_save",
    "storage_location_validate_jurisdiction", "storage_reconcile",
    "storage_reconcile_report_send", "upload_abort", "upload_complete",
    "upload_header_check", "upload_part_urls", "upload_parts_list", "upload_start",
    "uploads_abort_stale", "uploads_complete", "uploads_first_part_urls", "uploads_put_urls",
    "uploads_start",
    "usage_record", "usage_record_last_month",
]
