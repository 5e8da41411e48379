"""Downloads: the stored headers re-addressed to the client's ephemeral key, and
short-lived GET URLs for the segments. The CLI and the portal both come through here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TypedDict

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from audit.actions import AuditAction
from audit.services import audit_record
from projects.models import Project
from transfers.errors import BadInput
from transfers.models import File
from transfers.paths import path_normalise
from transfers.selectors import download_lost_check, files_page, files_under
from transfers.services.headers import headers_for_recipient, recipient_key_check
from transfers.storage import storage_for_project

DOWNLOAD_BATCH_MAX = 1000


class DownloadItem(TypedDict):
    path: str
    header: bytes  # addressed to the caller's ephemeral key only
    checksum: str
    size_original: int
    size_stored: int
    compressed: bool
    url: str
    # For the portal, which reads the object itself (not in the API's answer).
    object_key: str
    uploaded_at: dt.datetime


class DownloadBatch(TypedDict):
    files: list[DownloadItem]
    missing: list[str]
    expires_in: int
    next: str | None


def _download_files(*, project: Project, paths: Sequence[str] | None,
                    folder: str | None) -> tuple[QuerySet[File], set[str] | None]:
    """The files asked for (``paths``, or everything under ``folder``), and the
    normalised paths when paths were named."""
    if paths is None:
        folder = path_normalise(folder or "", allow_root=True)
        return files_under(project=project, folder=folder), None
    if len(paths) > DOWNLOAD_BATCH_MAX:
        raise BadInput(f"At most {DOWNLOAD_BATCH_MAX} paths per request.")
    wanted = {path_normalise(p) for p in paths}
    return File.objects.filter(project=project, path__in=wanted), wanted


@transaction.atomic
def files_download_prepare(*, project: Project, user: User, kek: bytes,
                           recipient_public_key: bytes, paths: Sequence[str] | None = None,
                           folder: str | None = None, after: str = "",
                           limit: int = DOWNLOAD_BATCH_MAX,
                           ip: str | None = None) -> DownloadBatch:
    """Per file: the header re-encrypted to the client's ephemeral key, checksum, sizes
    and a presigned GET URL (DDS_DOWNLOAD_URL_TTL, at most an hour: ddsite.settings caps
    it). Records the download time.

    ``paths`` or ``folder`` (or neither: everything), keyset-paginated by path.
    """
    limit = max(1, min(limit, DOWNLOAD_BATCH_MAX))
    recipient_key_check(recipient_public_key)
    asked, wanted = _download_files(project=project, paths=paths, folder=folder)
    download_lost_check(project=project, paths=paths, folder=folder)
    files, cursor = files_page(asked, after=after, limit=limit)
    headers = headers_for_recipient(project=project, user=user, kek=kek,
                                    headers=[bytes(f.header) for f in files],
                                    recipient_public_key=recipient_public_key)
    backend = storage_for_project(project)
    ttl: int = settings.DDS_DOWNLOAD_URL_TTL
    File.objects.filter(pk__in=[f.pk for f in files]).update(last_downloaded_at=timezone.now())
    out: list[DownloadItem] = [
        {"path": f.path, "header": h, "checksum": f.checksum,
         "size_original": f.size_original, "size_stored": f.size_stored,
         "compressed": f.compressed, "url": backend.presign_get(project.bucket, f.object_key, ttl),
         "object_key": f.object_key, "uploaded_at": f.uploaded_at}
        for f, h in zip(files, headers, strict=True)]
    audit_record(action=AuditAction.FILE_DOWNLOAD, actor=user, project=project, ip=ip,
                 target=files[0].path if len(files) == 1 else f"{len(files)} files",
                 details={"count": len(files), "bytes": sum(f.size_stored for f in files),
                          "paths": [f.path for f in files[:50]]})
    return {"files": out,
            "missing": sorted(wanted - {f.path for f in files}) if wanted is not None else [],
            "expires_in": ttl, "next": cursor}
