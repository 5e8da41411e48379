"""Completing uploads: every claim checked, the object assembled, the file recorded.

Everything the client claims is checked before storage assembles the object, so a
refused call leaves the upload in progress: the client fixes the part or the header and
calls again (resume), or aborts. Only if storage itself then disagrees (the multipart is
gone by then) is the upload closed, its reservation released and the object deleted, in
a transaction of its own so that bookkeeping survives the error.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

import c4gh
from accounts.models import User
from audit.actions import AuditAction
from audit.services import audit_record
from core.errors import DDSError
from projects.models import Project
from transfers.errors import BadInput, Conflict, NotAllowed, StorageRejected
from transfers.models import File, FileVersion, Folder, Upload, UploadStatus
from transfers.paths import path_split
from transfers.selectors import Op, released_files_message, transfer_check, uploads_get
from transfers.services.catalogue import (
    folder_totals,
    folders_add,
    folders_subtract,
    objects_delete_later,
    project_share_lock,
)
from transfers.services.headers import ProjectKeyOnce, header_validate
from transfers.services.uploads import (
    QuotaLedger,
    batch_size_check,
    crc32_check,
    require_in_progress,
    upload_finish,
)
from transfers.storage import StorageBackend, StoredPart, etag_bare, storage_for_project
from transfers.storage.parallel import storage_map

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class CompleteInput:
    parts: list[tuple[int, str]]
    header: bytes
    checksum: str
    size_original: int
    size_stored: int
    compressed: bool
    #: Part number -> the CRC32 the client computed (checksummed uploads: every part).
    crc32s: dict[int, str] = field(default_factory=dict)


class _AssembledWrong(Exception):
    """Storage assembled an object that must not be kept (checked after completion)."""

    def __init__(self, message: str, refusal: DDSError | None = None) -> None:
        super().__init__(message)
        # A refusal found only after assembly (status changed meanwhile): the object is
        # removed and the upload aborted, then this error is what the caller gets.
        self.refusal = refusal


def upload_complete(*, upload: Upload, by: User, kek: bytes, data: CompleteInput,
                    ip: str | None = None) -> File:
    """Finish a multipart upload and record the file (and its version)."""
    key = ProjectKeyOnce(project=upload.project, by=by, kek=kek)
    return _upload_complete_one(upload=upload, by=by, key=key, data=data, ip=ip)


def uploads_complete(*, project: Project, by: User, kek: bytes,
                     items: Sequence[tuple[str, CompleteInput]],
                     ip: str | None = None) -> list[File | DDSError]:
    """Complete several uploads of ``project`` (by upload id): per item the file or why it
    was refused (the same refusals as :func:`upload_complete`, each item in a transaction
    of its own). The project key is unlocked once for all the headers."""
    batch_size_check(len(items))
    uploads = uploads_get(project=project, user=by, public_ids=[i for i, _ in items])
    key = ProjectKeyOnce(project=project, by=by, kek=kek)
    # What storage holds, asked for all uploads at once (each item still checks it before
    # assembly, and storage refuses a complete whose ETags are not the stored parts').
    mine = [u for u in dict.fromkeys(uploads.values()) if isinstance(u, Upload)
            and u.status == UploadStatus.IN_PROGRESS and u.put_size is None]
    backend = storage_for_project(project)
    listed = dict(zip((u.pk for u in mine), storage_map(
        lambda u: backend.list_parts(project.bucket, u.object_key, u.multipart_id), mine),
        strict=True))
    # Single-PUT uploads (first mention of each): completed together, one transaction.
    singles: dict[int, tuple[Upload, CompleteInput]] = {}
    seen: set[int] = set()
    for i, (public_id, data) in enumerate(items):
        upload = uploads[public_id]
        if isinstance(upload, Upload) and upload.pk not in seen:
            seen.add(upload.pk)
            if upload.put_size is not None and upload.status == UploadStatus.IN_PROGRESS:
                singles[i] = (upload, data)
    done = _single_puts_complete(project=project, by=by, key=key, items=singles,
                                 ip=ip) if singles else {}
    out: list[File | DDSError] = []
    for i, (public_id, data) in enumerate(items):
        if i in done:
            out.append(done[i])
            continue
        upload = uploads[public_id]
        if isinstance(upload, DDSError):
            out.append(upload)
            continue
        stored = listed.pop(upload.pk, None)  # a repeated id asks storage again
        try:
            out.append(_upload_complete_one(
                upload=upload, by=by, key=key, data=data, ip=ip, backend=backend,
                stored_parts=None if isinstance(stored, DDSError) else stored))
        except DDSError as exc:
            out.append(exc)
    return out


def _single_puts_complete(*, project: Project, by: User, key: ProjectKeyOnce,
                          items: dict[int, tuple[Upload, CompleteInput]],
                          ip: str | None) -> dict[int, File | DDSError]:
    """Complete single-PUT uploads of one batch in one transaction: every item checked
    on its own (a refused one stays in progress), then the accepted ones written with one
    INSERT per table, folder totals once, and ONE ``file.upload`` audit event.

    No storage call: storage took exactly ``put_size`` bytes for each (the signed
    length), so no lock is held across one. Locks in the documented order: the project
    row (shared), the upload rows (by id), the files replaced, the audit head last."""
    out: dict[int, File | DDSError] = {}
    with transaction.atomic():
        project_share_lock(project.pk)
        project = Project.objects.select_related("unit").get(pk=project.pk)
        locked = {u.pk: u for u in Upload.objects.select_for_update().filter(
            pk__in=[u.pk for u, _ in items.values()]).order_by("pk")}
        try:
            transfer_check(project=project, user=by, op=Op.UPLOAD)
        except DDSError as refusal:
            return dict.fromkeys(items, refusal)
        ok: dict[int, tuple[Upload, CompleteInput]] = {}
        for i, (stale, data) in items.items():
            upload = locked[stale.pk]
            upload.project = project
            try:
                require_in_progress(upload)
                if upload.created_by_id != by.pk:
                    raise NotAllowed("This upload was started by another user.")
                _claims_check(upload=upload, data=data)
                header_validate(project=project, key=key, header=data.header)
                _single_put_check(upload=upload, data=data)
            except DDSError as exc:
                out[i] = exc
                continue
            ok[i] = (upload, data)
        existing = {f.path: f for f in File.objects.select_for_update().filter(
            project=project, path__in=[u.path for u, _ in ok.values()]).order_by("pk")}
        for i, (upload, _) in list(ok.items()):
            if upload.path not in existing:
                continue
            if not upload.overwrite:
                out[i] = Conflict(f"{upload.path} was created meanwhile; start again with "
                                  "overwrite.")
            elif project.released:
                out[i] = NotAllowed(released_files_message(project, "replaced"))
            else:
                continue
            del ok[i]
        if ok:
            out.update(_files_record_many(project=project, by=by, ok=ok, existing=existing,
                                          ip=ip))
    return out


def _file_fill(f: File, *, upload: Upload, data: CompleteInput, now: datetime,
               by: User) -> None:
    """Point the file row at the upload's new object (one file or a batch alike)."""
    f.object_key = upload.object_key
    f.size_original = upload.size_original
    f.size_stored = data.size_stored
    f.compressed = data.compressed
    f.header = data.header
    f.checksum = data.checksum
    f.uploaded_at = now
    f.uploaded_by = by
    f.last_downloaded_at = None


def _files_record_many(*, project: Project, by: User,
                       ok: dict[int, tuple[Upload, CompleteInput]],
                       existing: dict[str, File], ip: str | None) -> dict[int, File]:
    """The rows of accepted single-PUT completes: files (new ones in one INSERT, replaced
    ones with their old versions closed), versions, folder totals, uploads, one event."""
    now = timezone.now()
    replaced = [existing[u.path] for u, _ in ok.values() if u.path in existing]
    old_keys = [f.object_key for f in replaced]
    if replaced:
        FileVersion.objects.filter(file__in=replaced, deleted_at__isnull=True).update(
            deleted_at=now)
        folders_subtract(project, replaced)  # with their old sizes, before they change
    files: dict[int, File] = {}
    for i, (upload, data) in ok.items():
        folder, name = path_split(upload.path)
        f = existing.get(upload.path) or File(project=project, path=upload.path, name=name,
                                              folder=folder)
        _file_fill(f, upload=upload, data=data, now=now, by=by)
        files[i] = f
    File.objects.bulk_create([f for f in files.values() if f.pk is None])
    if replaced:
        File.objects.bulk_update(replaced, _FILE_FIELDS)
    FileVersion.objects.bulk_create([
        FileVersion(project=project, file=f, object_key=f.object_key,
                    size_stored=f.size_stored, uploaded_at=now) for f in files.values()])
    folders_add_many(project, list(files.values()))
    Upload.objects.filter(pk__in=[u.pk for u, _ in ok.values()]).update(
        status=UploadStatus.COMPLETED, finished_at=now)
    objects_delete_later(project, old_keys)
    audit_record(action=AuditAction.FILE_UPLOAD, actor=by, project=project, ip=ip,
                 target=next(iter(files.values())).path if len(files) == 1
                 else f"{len(files)} files",
                 details=_batch_details(ok, files, overwrote=len(old_keys)))
    return files


_FILE_FIELDS = ["object_key", "size_original", "size_stored", "compressed", "header",
                "checksum", "uploaded_at", "uploaded_by", "last_downloaded_at"]
#: Paths named in one batch event (the count and bytes are always whole).
_EVENT_PATHS_MAX = 200


def _batch_details(ok: dict[int, tuple[Upload, CompleteInput]], files: dict[int, File],
                   *, overwrote: int) -> dict[str, object]:
    """One event's details for a batch: ``size_stored`` is the batch's total (what the
    after-upload quota check adds), ``files`` the count, the paths bounded."""
    if len(files) == 1:
        [(upload, _)] = ok.values()
        [f] = files.values()
        return {"upload": upload.public_id, "size_stored": f.size_stored,
                "overwrote": bool(overwrote)}
    paths = [f.path for f in files.values()]
    return {"files": len(files), "size_stored": sum(f.size_stored for f in files.values()),
            "size_original": sum(f.size_original for f in files.values()),
            "overwrote": overwrote, "paths": paths[:_EVENT_PATHS_MAX],
            "paths_truncated": len(paths) > _EVENT_PATHS_MAX}


def folders_add_many(project: Project, files: Sequence[File]) -> None:
    """Count new files in their folders and the folders above them (creating them): one
    INSERT, the rows locked in path order (as ``catalogue.folders_add``), one UPDATE per
    folder touched instead of one per file and folder."""
    totals = folder_totals(files)
    Folder.objects.bulk_create(
        [Folder(project=project, path=p, parent=path_split(p)[0] if p else "",
                name=path_split(p)[1] if p else "") for p in totals],
        ignore_conflicts=True)
    rows = dict(Folder.objects.select_for_update().filter(project=project, path__in=totals)
                .order_by("path").values_list("path", "pk"))
    for path, t in sorted(totals.items()):
        Folder.objects.filter(pk=rows[path]).update(
            file_count=F("file_count") + t.files,
            size_original=F("size_original") + t.original,
            size_stored=F("size_stored") + t.stored)


def _upload_complete_one(*, upload: Upload, by: User, key: ProjectKeyOnce,
                         data: CompleteInput, ip: str | None,
                         backend: StorageBackend | None = None,
                         stored_parts: list[StoredPart] | None = None) -> File:
    try:
        with transaction.atomic():
            return _upload_complete(upload=upload, by=by, key=key, data=data, ip=ip,
                                    backend=backend, stored_parts=stored_parts)
    except _AssembledWrong as exc:
        with transaction.atomic():
            upload_finish(upload, UploadStatus.ABORTED)
            objects_delete_later(upload.project, [upload.object_key])
            audit_record(action=AuditAction.UPLOAD_ABORT, actor=by, project=upload.project,
                         target=upload.path, ip=ip,
                         details={"upload": upload.public_id, "reason": str(exc)})
        raise exc.refusal or BadInput(str(exc))


def _upload_complete(*, upload: Upload, by: User, key: ProjectKeyOnce, data: CompleteInput,
                     ip: str | None, backend: StorageBackend | None,
                     stored_parts: list[StoredPart] | None) -> File:
    """The steps of one complete, in one transaction (the caller's)."""
    upload = _upload_lock(upload=upload, by=by)
    project = upload.project
    _claims_check(upload=upload, data=data)
    header_validate(project=project, key=key, header=data.header)
    existing: File | None
    if upload.put_size is not None:
        # A single PUT: storage refused any body but exactly put_size bytes (the length
        # is signed into the URL), and put_size <= reserved_bytes; nothing to assemble.
        _single_put_check(upload=upload, data=data)
        existing = _existing_file(upload=upload)
    else:
        # A batch resolves the project's backend once (location query, credentials).
        backend = backend or storage_for_project(project)
        recovered = _parts_check(backend=backend, upload=upload, data=data,
                                 stored_parts=stored_parts)
        if data.size_stored > upload.reserved_bytes:
            # Compression made it bigger than announced: the excess needs quota too.
            QuotaLedger.locked(project).reserve(data.size_stored - upload.reserved_bytes)
        existing = _existing_file(upload=upload)
        _assemble(backend=backend, upload=upload, data=data, recovered=recovered)
    _rules_recheck(upload=upload, by=by, replacing=existing is not None)
    f, old_key = _file_record(upload=upload, by=by, data=data, existing=existing)
    upload_finish(upload, UploadStatus.COMPLETED)
    if old_key:
        # The old version stays as a FileVersion row (invoicing); its object goes.
        objects_delete_later(upload.project, [old_key])
    audit_record(action=AuditAction.FILE_UPLOAD, actor=by, project=upload.project,
                 target=f.path, ip=ip,
                 details={"upload": upload.public_id, "size_stored": f.size_stored,
                          "overwrote": bool(old_key)})
    return f


def _upload_project_reread(upload: Upload) -> Project:
    project = Project.objects.select_related("unit").get(pk=upload.project_id)
    upload.project = project
    return project


def _upload_lock(*, upload: Upload, by: User) -> Upload:
    """The upload's row locked, still in progress, the caller's, its project (re-read:
    the status may have changed since the request's first check) open for uploads."""
    upload = Upload.objects.select_for_update().get(pk=upload.pk)
    require_in_progress(upload)
    transfer_check(project=_upload_project_reread(upload), user=by, op=Op.UPLOAD)
    if upload.created_by_id != by.pk:
        raise NotAllowed("This upload was started by another user.")
    return upload


def _claims_check(*, upload: Upload, data: CompleteInput) -> None:
    """The sizes and checksum the client sends fit what it announced at start."""
    if data.size_original != upload.size_original:
        raise BadInput(f"size_original {data.size_original} differs from the "
                       f"{upload.size_original} announced at start.")
    if not _SHA256.match(data.checksum or ""):
        raise BadInput("checksum must be the SHA-256 of the original as 64 hex digits.")
    expected = c4gh.stored_size(upload.size_original)
    if not data.compressed and data.size_stored != expected:
        raise BadInput(f"Stored size mismatch: {upload.size_original} B uncompressed give "
                       f"{expected} B of segments, not {data.size_stored}.")


def _single_put_check(*, upload: Upload, data: CompleteInput) -> None:
    if data.size_stored != upload.put_size:
        raise BadInput(f"Stored size mismatch: this upload's PUT was signed for "
                       f"{upload.put_size} B, size_stored says {data.size_stored}.",
                       put_size=upload.put_size, size_stored=data.size_stored)


def _parts_check(*, backend: StorageBackend, upload: Upload, data: CompleteInput,
                 stored_parts: list[StoredPart] | None) -> bool:
    """The parts named are the parts stored; True if storage already assembled them."""
    if stored_parts is None:
        try:
            stored_parts = backend.list_parts(upload.project.bucket, upload.object_key,
                                              upload.multipart_id)
        except StorageRejected as exc:
            # An earlier complete assembled the object and then lost its transaction (a
            # crash, a lock timeout): record what storage holds if it is what the client
            # sent, instead of leaving an object no row knows about.
            if exc.details.get("storage_code") != "NoSuchUpload":
                raise
            _assembled_check(backend=backend, upload=upload, data=data, missing=exc)
            return True
    _parts_validate(upload=upload, parts=data.parts, stored=stored_parts,
                    size_stored=data.size_stored)
    _checksums_validate(upload=upload, data=data, stored=stored_parts)
    return False


def _checksums_validate(*, upload: Upload, data: CompleteInput,
                        stored: list[StoredPart]) -> None:
    """A checksummed upload's complete names every part's CRC32; where storage reports
    the CRC32 it verified for a part (S3's ListParts, the local store), they must agree.
    (An upload that is not checksummed ignores any: nothing was verified.)"""
    if not upload.part_checksum:
        return
    by_number = {p.number: p for p in stored}
    for n, _ in data.parts:
        if n not in data.crc32s:
            raise BadInput(f"Upload {upload.public_id} checksums its parts: give part "
                           f"{n}'s crc32 in the complete.", part_number=n)
        claimed = crc32_check(data.crc32s[n], what=f"part {n}")
        have = by_number[n].crc32
        if have is not None and have != claimed:
            raise StorageRejected(f"Part {n}: the CRC32 does not match the stored part "
                                  f"(storage verified {have}); upload the part again.",
                                  part_number=n)


def _parts_validate(*, upload: Upload, parts: Sequence[tuple[int, str]],
                    stored: list[StoredPart], size_stored: int) -> None:
    numbers = [n for n, _ in parts]
    if not parts or numbers != list(range(1, len(parts) + 1)):
        raise BadInput("List every part once, numbered 1..n in ascending order.")
    by_number = {p.number: p for p in stored}
    for n, etag in parts:
        have = by_number.get(n)
        if have is None:
            raise StorageRejected(f"Part {n} is not stored; upload it (resume) first.",
                                  part_number=n)
        if have.etag != etag_bare(etag):
            raise StorageRejected(f"Part {n}: the ETag does not match the stored part.",
                                  part_number=n)
        # Whole segments per part is what makes resuming at a part boundary safe.
        if n < len(parts) and have.size != upload.part_size:
            raise BadInput(f"Part {n} has {have.size} bytes; every part but the last must "
                           f"have exactly {upload.part_size} bytes (whole segments).",
                           part_number=n)
    total = sum(by_number[n].size for n in numbers)
    if total != size_stored:
        raise BadInput(f"Stored size mismatch: the parts hold {total} bytes, "
                       f"size_stored says {size_stored}.",
                       parts_bytes=total, size_stored=size_stored)


def _existing_file(*, upload: Upload) -> File | None:
    """The file this upload replaces (locked), if replacing it is allowed."""
    project = upload.project
    existing = File.objects.select_for_update().filter(project=project,
                                                       path=upload.path).first()
    if existing is not None and not upload.overwrite:
        raise Conflict(f"{upload.path} was created meanwhile; start again with overwrite.")
    if existing is not None and project.released:
        # Released since the upload started: researchers may already have this file.
        raise NotAllowed(released_files_message(project, "replaced"))
    return existing


def _assemble(*, backend: StorageBackend, upload: Upload, data: CompleteInput,
              recovered: bool) -> None:
    """Storage joins the parts (unless it already had); the result must have the size
    the client sent."""
    bucket = upload.project.bucket
    if not recovered:
        backend.complete_multipart(
            bucket, upload.object_key, upload.multipart_id, data.parts,
            checksums={n: data.crc32s[n] for n, _ in data.parts}
            if upload.part_checksum else None)
    actual = backend.head_size(bucket, upload.object_key)
    if actual != data.size_stored:
        raise _AssembledWrong(f"Stored size mismatch: storage holds {actual} B, "
                              f"expected {data.size_stored}.")


def _rules_recheck(*, upload: Upload, by: User, replacing: bool) -> None:
    """The rule once more, now under the project row lock held until commit.

    Taken only here, after the storage calls, so completes do not queue behind each
    other's storage round trips: a key rotation starting meanwhile waits for this commit
    and then sees the new header, or this complete sees the project busy; a release
    meanwhile forbids replacing a delivered file.
    """
    project_share_lock(upload.project_id)
    project = _upload_project_reread(upload)
    try:
        transfer_check(project=project, user=by, op=Op.UPLOAD)
        if replacing and project.released:
            raise NotAllowed(released_files_message(project, "replaced"))
    except DDSError as refusal:
        raise _AssembledWrong(str(refusal), refusal) from refusal


def _file_record(*, upload: Upload, by: User, data: CompleteInput,
                 existing: File | None) -> tuple[File, str | None]:
    """The File row (new, or the replaced one with its old version closed), its new
    version and folder totals; returns the file and the replaced object's key."""
    project = upload.project
    now = timezone.now()
    folder, name = path_split(upload.path)
    old_key = None
    if existing is not None:
        old_key = existing.object_key
        FileVersion.objects.filter(file=existing, deleted_at__isnull=True).update(
            deleted_at=now)
        folders_subtract(project, [existing])  # with its old sizes, before they change
        f = existing
    else:
        f = File(project=project, path=upload.path, name=name, folder=folder)
    _file_fill(f, upload=upload, data=data, now=now, by=by)
    f.save()
    FileVersion.objects.create(project=project, file=f, object_key=f.object_key,
                               size_stored=f.size_stored, uploaded_at=now)
    folders_add(project, f)
    return f, old_key


def multipart_etag(parts: Sequence[tuple[int, str]]) -> str:
    """The ETag S3 gives an object assembled from these parts: MD5 of the parts' MD5s."""
    digests = b"".join(bytes.fromhex(etag_bare(etag)) for _, etag in sorted(parts))
    return f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(parts)}"


def _assembled_check(*, backend: StorageBackend, upload: Upload, data: CompleteInput,
                     missing: StorageRejected) -> None:
    """The multipart upload is gone: is the object it became the one this complete
    describes? Its size, and on S3 its ETag against the client's part ETags. No object:
    the upload is simply gone (``missing`` is raised, and the client starts again)."""
    bucket = upload.project.bucket
    size = backend.head_size(bucket, upload.object_key)
    if size is None:
        raise missing
    if size != data.size_stored:
        raise _AssembledWrong(f"Stored size mismatch: storage holds {size} B, "
                              f"expected {data.size_stored}.")
    etag = backend.object_etag(bucket, upload.object_key)
    try:
        expected = multipart_etag(data.parts) if data.parts else None
    except ValueError:
        expected = None
    if etag is not None and "-" in etag and etag != expected:
        raise _AssembledWrong("The stored object is not made of the parts named in this "
                              "complete.")
