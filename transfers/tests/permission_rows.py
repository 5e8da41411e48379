"""Permission rows for the transfers API (format: tests/permission_matrix.py).

The matrix project is In Progress, so researchers and owners are refused listing and
download by status (403) while the unit's staff are allowed.
"""

from __future__ import annotations

import secrets

from tests.permission_matrix import ALLOWED, Row, signed_in


def _project(world):
    return {"project_id": world.project.public_id}


def _upload(world):
    """An upload started by the unit admin (only its starter may continue it)."""
    from transfers.models import Upload

    upload = Upload.objects.create(
        public_id=secrets.token_urlsafe(16), project=world.project, path="matrix.bin",
        object_key=secrets.token_hex(20), multipart_id=secrets.token_hex(16),
        size_original=1, reserved_bytes=29, part_size=65564,
        created_by=world.unit_admin)
    return {"project_id": world.project.public_id, "upload_id": upload.public_id}


#: Upload and removal: the project's unit staff (the Super Admin holds no project role).
WRITE = signed_in(ALLOWED, researcher=403, owner=403, super_admin=403, other_unit_staff=404)
#: Continuing an upload: only the user who started it.
STARTER = signed_in(ALLOWED, researcher=403, owner=403, personnel=403, super_admin=403,
                    other_unit_staff=404)
#: Listing while In Progress: unit staff and the Super Admin (metadata only).
LIST = signed_in(ALLOWED, researcher=403, owner=403, other_unit_staff=404)
#: Download while In Progress: unit staff only (the Super Admin has no keys).
DOWNLOAD = signed_in(ALLOWED, researcher=403, owner=403, super_admin=403,
                     other_unit_staff=404)

ROWS = {
    # A negative size is refused by validation after authorisation: no storage touched.
    "transfers-upload-start": Row("post", kwargs=_project,
                                  body={"path": "m.bin", "size_original": -1}, expect=WRITE),
    # Batches: a malformed item is refused by validation after authorisation; whose
    # uploads the items are is then decided per item (test_upload_batch).
    "transfers-uploads-start-batch": Row(
        "post", kwargs=_project, body={"uploads": [{"path": "m.bin", "size_original": -1}]},
        expect=WRITE),
    "transfers-uploads-complete-batch": Row("post", kwargs=_project, body={"uploads": []},
                                            expect=WRITE),
    # A header that is not base64 is refused by validation after authorisation.
    "transfers-upload-header-check": Row("post", kwargs=_project,
                                         body={"header": "!", "public_key": "!"},
                                         expect=WRITE),
    "transfers-upload-abort": Row("delete", kwargs=_upload, expect=STARTER),
    "transfers-upload-parts": Row("get", kwargs=_upload, expect=STARTER),
    "transfers-upload-part-urls": Row("post", kwargs=_upload, body={"part_numbers": [1]},
                                      expect=STARTER),
    "transfers-upload-complete": Row("post", kwargs=_upload, body={}, expect=STARTER),
    "transfers-files-list": Row("get", kwargs=_project, expect=LIST),
    "transfers-files-tree": Row("get", kwargs=_project, expect=LIST),
    "transfers-files-match": Row("post", kwargs=_project, body={"paths": ["a"]}, expect=LIST),
    "transfers-file-info": Row("get", kwargs=_project, expect=LIST),
    "transfers-project-storage": Row("get", kwargs=_project, expect=LIST),
    "transfers-files-remove": Row("post", kwargs=_project, body={"paths": ["nope"]},
                                  expect=WRITE),
    "transfers-folder-remove": Row("post", kwargs=_project, body={}, expect=WRITE),
    "transfers-files-download": Row("post", kwargs=_project, body={}, expect=DOWNLOAD),
}
