"""Writes of the transfers app: storage locations, uploads, the catalogue, downloads,
usage and project storage purge.

Storage calls happen inside the transaction *before* the rows that depend on them are
written, so a storage failure (``StorageUnavailable``, 503) rolls everything back and the
client can retry; objects that become garbage are deleted after commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import re
import secrets
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

import c4gh
from accounts.models import Unit, User
from audit.services import audit_record
from core import metrics
from core.sealing import seal
from projects.models import Project
from transfers.errors import (
    BadInput,
    Conflict,
    NotAllowed,
    QuotaExceeded,
    StorageRejected,
    StorageUnavailable,
    TransferError,
)
from transfers.models import (
    File,
    FileVersion,
    Folder,
    StorageLocation,
    Upload,
    UploadStatus,
    Usage,
)
from transfers.paths import path_ancestors, path_normalise, path_split
from transfers.selectors import (
    Op,
    files_under,
    released_files_message,
    transfer_check,
    unit_bytes_used,
)
from transfers.storage import StorageBackend, storage_for_project

_PURPOSE_ACCESS = "storage-location-access-key"
_PURPOSE_SECRET = "storage-location-secret-key"  # noqa: S105 - a label, not a secret


def storage_location_validate_jurisdiction(*, region: str, endpoint: str) -> None:
    """Data stays in one jurisdiction: refuse regions/endpoints not on the allowed lists."""
    allowed_regions = settings.DDS_ALLOWED_STORAGE_REGIONS
    if region not in allowed_regions:
        raise ValidationError(
            {"region": f"Region {region!r} is not allowed; allowed regions: "
                       f"{', '.join(allowed_regions)} (DDS_ALLOWED_STORAGE_REGIONS)."})
    allowed_endpoints = settings.DDS_ALLOWED_STORAGE_ENDPOINTS
    if endpoint and allowed_endpoints:
        host = urlsplit(endpoint).hostname or ""
        if not any(host == a or host.endswith("." + a) for a in allowed_endpoints):
            raise ValidationError(
                {"endpoint": f"Endpoint host {host!r} is not on the allowed list "
                             f"(DDS_ALLOWED_STORAGE_ENDPOINTS)."})


@transaction.atomic
def storage_location_save(*, location: StorageLocation, by: User | None,
                          access_key: str | None = None,
                          secret_key: str | None = None) -> StorageLocation:
    """Validate and save a location; credentials given here are sealed, never stored plain.

    ``None`` for a credential keeps the stored one.
    """
    storage_location_validate_jurisdiction(region=location.region, endpoint=location.endpoint)
    if access_key is not None:
        location.access_key_sealed = seal(access_key.encode(), purpose=_PURPOSE_ACCESS)
    if secret_key is not None:
        location.secret_key_sealed = seal(secret_key.encode(), purpose=_PURPOSE_SECRET)
    if location.is_active:
        # One active location per unit: activating this one retires the others.
        StorageLocation.objects.filter(unit=location.unit, is_active=True).exclude(
            pk=location.pk).update(is_active=False)
    location.full_clean()
    location.save()
    audit_record(action="storage_location.save", actor=by, target=str(location),
                 details={"unit": location.unit.name,
                          "credentials_changed": access_key is not None
                          or secret_key is not None})
    return location


def storage_location_credentials(location: StorageLocation) -> tuple[str, str] | None:
    """The unsealed credentials, for the storage backend only (never for a response)."""
    from core.sealing import unseal

    if not location.has_credentials:
        return None
    return (unseal(location.access_key_sealed, purpose=_PURPOSE_ACCESS).decode(),
            unseal(location.secret_key_sealed, purpose=_PURPOSE_SECRET).decode())


def storage_location_create_local(*, unit: Unit, by: User | None) -> StorageLocation:
    location = StorageLocation(unit=unit, name="local", region="local", endpoint="")
    return storage_location_save(location=location, by=by)


# =========================================================================== uploads

logger = logging.getLogger(__name__)

#: S3 allows at most 10 000 parts per multipart upload.
MAX_PARTS = 10_000
#: The largest object S3 accepts (5 TiB); with MAX_PARTS this fixes the largest part size.
MAX_OBJECT_BYTES = 5 * 1024**4
PART_URL_BATCH_MAX = 100
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def part_size_for(stored_bytes: int) -> int:
    """Part size: a whole number of Crypt4GH segments, at least the S3 minimum, and large
    enough that the whole object fits in 10 000 parts (5 TiB -> 7 993 segments/part)."""
    min_segments = max(1, settings.DDS_UPLOAD_MIN_PART_SEGMENTS)
    needed = c4gh.segment_count(stored_bytes)
    segments = max(min_segments, math.ceil(needed / MAX_PARTS))
    return segments * c4gh.CIPHER_SEGMENT_SIZE


class _QuotaLedger:
    """A unit's usage, read once under its row lock; reservations add up as granted.

    Callers hold the unit row lock, so two concurrent reservations cannot both pass, and a
    batch reads the usage once for all its items.
    """

    def __init__(self, unit) -> None:
        self.unit = unit
        self.stored, self.reserved = unit_bytes_used(unit_id=unit.pk)

    def reserve(self, extra: int) -> None:
        """Refuse ``extra`` more bytes when they would exceed the unit's quota."""
        stored, reserved, quota = self.stored, self.reserved, self.unit.quota_bytes
        if stored + reserved + extra > quota:
            metrics.transfer_failed(direction="upload", reason="quota")
            raise QuotaExceeded(
                f"Quota of {self.unit} exceeded: {stored} B stored + {reserved} B reserved "
                f"by uploads in progress + {extra} B requested > quota {quota} B.",
                quota_bytes=quota, stored_bytes=stored, reserved_bytes=reserved,
                requested_bytes=extra)
        self.reserved += extra


def _quota_check(*, unit, extra: int) -> None:
    _QuotaLedger(unit).reserve(extra)


def _lock_unit(project: Project):
    from accounts.models import Unit

    return Unit.objects.select_for_update().get(pk=project.unit_id)


@dataclass
class StartInput:
    path: str
    size_original: int
    overwrite: bool = False


@dataclass
class _PathState:
    """What already occupies a set of paths of a project (three queries for any number)."""

    files: set[str]
    folders: set[str]
    active: dict[str, str]  # path -> public id of the upload in progress

    @classmethod
    def load(cls, project: Project, paths: set[str]) -> _PathState:
        # The paths and every folder above them: a file cannot sit inside a file.
        wanted = set(paths)
        for path in paths:
            wanted.update(a for a in path_ancestors(path_split(path)[0]) if a)
        return cls(
            set(File.objects.filter(project=project, path__in=wanted)
                .values_list("path", flat=True)),
            set(Folder.objects.filter(project=project, path__in=paths)
                .values_list("path", flat=True)),
            dict(Upload.objects.filter(project=project, path__in=wanted,
                                       status=UploadStatus.IN_PROGRESS)
                 .values_list("path", "public_id")))


def _upload_admit(*, project: Project, by: User, item: StartInput, state: _PathState,
                  ledger: _QuotaLedger) -> Upload:
    """Every rule of starting one upload (the caller holds the unit lock): the upload to
    open, its bytes reserved in ``ledger`` and its path taken in ``state``."""
    path = item.path
    exists = path in state.files
    if exists and not item.overwrite:
        raise Conflict(f"{path} already exists in {project.public_id}; "
                       "set overwrite to replace it.")
    if exists and project.released:
        raise NotAllowed(released_files_message(project, "replaced"))
    if path in state.folders:
        raise Conflict(f"{path} is a folder in {project.public_id}.")
    ancestors = [a for a in path_ancestors(path_split(path)[0]) if a]
    for ancestor in ancestors:
        if ancestor in state.files or ancestor in state.active:
            raise Conflict(f"{ancestor} is a file in {project.public_id} (or being "
                           f"uploaded): {path} cannot be inside it.")
    active = state.active.get(path)
    if active is not None:
        raise Conflict(f"An upload of {path} is already in progress ({active}); "
                       "resume or abort it.", upload_id=active)
    reserved = c4gh.stored_size(item.size_original)
    ledger.reserve(reserved)
    upload = Upload(public_id=secrets.token_urlsafe(16), project=project, path=path,
                    object_key=secrets.token_hex(20), size_original=item.size_original,
                    reserved_bytes=reserved, part_size=part_size_for(reserved),
                    overwrite=item.overwrite, created_by=by)
    state.active[path] = upload.public_id
    # Later items of the same batch see this path's folders as taken by folders.
    state.folders.update(ancestors)
    return upload


_storage_pool: ThreadPoolExecutor | None = None


def _storage_map(fn, items: list) -> list:
    """``fn`` over ``items``, storage calls in parallel (boto3 clients are thread-safe);
    per item its result or the ``TransferError`` it raised."""
    global _storage_pool

    def one(item):
        try:
            return fn(item)
        except TransferError as exc:
            return exc

    if len(items) <= 1:
        return [one(i) for i in items]
    if _storage_pool is None:
        _storage_pool = ThreadPoolExecutor(16, thread_name_prefix="dds-storage")
    return list(_storage_pool.map(one, items))


#: Uploads started or completed by one batch request.
UPLOAD_BATCH_MAX = 200


@transaction.atomic
def uploads_start(*, project: Project, by: User, items: Sequence[StartInput],
                  ip: str | None = None) -> list[Upload | TransferError]:
    """Start several uploads under one unit lock: per item the upload or why it was refused
    (the same refusals as :func:`upload_start`); a refused item changes nothing."""
    if not 1 <= len(items) <= UPLOAD_BATCH_MAX:
        raise BadInput(f"Give 1 to {UPLOAD_BATCH_MAX} uploads per batch.")
    out: list[Upload | TransferError | None] = [None] * len(items)
    todo: list[tuple[int, StartInput]] = []
    for i, item in enumerate(items):
        try:
            if item.size_original < 0 or item.size_original > MAX_OBJECT_BYTES:
                raise BadInput(f"size_original must be between 0 and {MAX_OBJECT_BYTES} "
                               "bytes.")
            todo.append((i, StartInput(path_normalise(item.path), item.size_original,
                                       item.overwrite)))
        except TransferError as exc:
            out[i] = exc
    if todo:
        ledger = _QuotaLedger(_lock_unit(project))
        state = _PathState.load(project, {item.path for _, item in todo})
        admitted: list[tuple[int, Upload]] = []
        for i, item in todo:
            try:
                admitted.append((i, _upload_admit(project=project, by=by, item=item,
                                                  state=state, ledger=ledger)))
            except TransferError as exc:
                out[i] = exc
        if admitted:
            backend = storage_for_project(project)
            backend.create_bucket(project.bucket)
            ids = _storage_map(lambda u: backend.start_multipart(project.bucket, u.object_key),
                               [u for _, u in admitted])
            started: list[Upload] = []
            for (i, upload), multipart_id in zip(admitted, ids, strict=True):
                if isinstance(multipart_id, StorageUnavailable):
                    raise multipart_id  # nothing is written: the whole batch can be retried
                if isinstance(multipart_id, TransferError):
                    out[i] = multipart_id  # (its reservation dies with the unsaved row)
                    continue
                upload.multipart_id = multipart_id
                started.append(upload)
                out[i] = upload
            if started:
                # One INSERT and one audit event for the batch (not per file).
                Upload.objects.bulk_create(started)
                one = [{"upload": u.public_id, "path": u.path, "size_original": u.size_original,
                        "reserved_bytes": u.reserved_bytes, "overwrite": u.overwrite}
                       for u in started]
                audit_record(action="upload.start", actor=by, project=project,
                             target=started[0].path if len(started) == 1
                             else f"{len(started)} uploads", ip=ip,
                             details=one[0] if len(one) == 1 else {"uploads": one})
    return out


def upload_start(*, project: Project, by: User, path: str, size_original: int,
                 overwrite: bool = False, ip: str | None = None) -> Upload:
    """Reserve quota, create the project's bucket if needed, start a multipart upload."""
    [result] = uploads_start(project=project, by=by, ip=ip,
                             items=[StartInput(path, size_original, overwrite)])
    if isinstance(result, TransferError):
        raise result
    return result


def _max_parts(upload: Upload) -> int:
    return max(1, math.ceil(upload.reserved_bytes / upload.part_size))


def _require_in_progress(upload: Upload) -> None:
    if upload.status != UploadStatus.IN_PROGRESS:
        raise Conflict(f"Upload {upload.public_id} is {upload.get_status_display().lower()}.",
                       upload_status=upload.status)


def upload_part_urls(*, upload: Upload, part_numbers: Sequence[int],
                     backend: StorageBackend | None = None) -> list[dict]:
    """Short-lived presigned UploadPart URLs for a batch of parts (no state change)."""
    _require_in_progress(upload)
    if not part_numbers or len(part_numbers) > PART_URL_BATCH_MAX:
        raise BadInput(f"Ask for 1 to {PART_URL_BATCH_MAX} parts at a time.")
    top = _max_parts(upload)
    bad = [n for n in part_numbers if not 1 <= n <= top]
    if bad:
        raise BadInput(f"Part numbers must be between 1 and {top} for this upload.",
                       invalid=bad[:20])
    backend = backend or storage_for_project(upload.project)
    ttl = settings.DDS_UPLOAD_PART_URL_TTL
    return [{"part_number": n,
             "url": backend.presign_part(upload.project.bucket, upload.object_key,
                                         upload.multipart_id, n, ttl,
                                         max_bytes=upload.part_size)}
            for n in sorted(set(part_numbers))]


def uploads_first_part_urls(*, project: Project, uploads: Sequence[Upload],
                            count: int) -> list[list[dict]]:
    """Per upload, the URLs of its first ``count`` parts (fewer if it has fewer)."""
    backend = storage_for_project(project)
    return [upload_part_urls(upload=u, backend=backend,
                             part_numbers=range(1, min(count, _max_parts(u)) + 1))
            for u in uploads]


def upload_parts_list(*, upload: Upload) -> list:
    """The parts storage holds for this upload (to resume after a failure)."""
    _require_in_progress(upload)
    return storage_for_project(upload.project).list_parts(
        upload.project.bucket, upload.object_key, upload.multipart_id)


def _project_key(*, project: Project, by: User, kek: bytes) -> bytes:
    """The project's private key, unlocked with the caller's KEK: the server cannot read
    headers on its own, only on behalf of a key holder."""
    from keys.services import KeyAccessError, project_private_key

    try:
        return project_private_key(project=project, user=by, kek=kek)
    except KeyAccessError as exc:  # no grant / wrong session
        raise NotAllowed(str(exc))


class _ProjectKeyOnce:
    """Unlocks the project key on first use and remembers the key (or the refusal), so a
    batch unlocks it once however many headers it checks."""

    def __init__(self, *, project: Project, by: User, kek: bytes) -> None:
        self.project, self.by, self.kek = project, by, kek
        self._key: bytes | None = None
        self._refusal: str | None = None

    def __call__(self) -> bytes:
        if self._key is None and self._refusal is None:
            try:
                self._key = _project_key(project=self.project, by=self.by, kek=self.kek)
            except NotAllowed as exc:
                self._refusal = exc.message
        if self._refusal is not None:
            raise NotAllowed(self._refusal)
        return self._key


def _header_validate(*, project: Project, key: _ProjectKeyOnce, header: bytes) -> None:
    if len(header) > 64 * 1024:
        raise BadInput("The Crypt4GH header is too large.")
    try:
        info = c4gh.parse_header(header, key())
    except c4gh.NoMatchingKeyError:
        raise BadInput(f"The Crypt4GH header is not addressed to the key of "
                       f"{project.public_id}; encrypt to the project's public key.")
    except (c4gh.C4GHError, ValueError) as exc:
        raise BadInput(f"The Crypt4GH header does not parse: {exc}")
    if info.header_len != len(header):
        raise BadInput("Trailing bytes after the Crypt4GH header.")


def upload_header_check(*, project: Project, by: User, kek: bytes, header: bytes,
                        recipient_public_key: bytes) -> bytes:
    """Check, before anything is uploaded, that a file encrypted elsewhere (a whole
    Crypt4GH file's header) is addressed to the project's key; return that header
    re-encrypted to the client's ephemeral key, so the client can verify and checksum
    the data it is about to send (as on download, the project key stays here)."""
    from keys.services import KeyAccessError, headers_reencrypt

    transfer_check(project=project, user=by, op=Op.UPLOAD)
    if len(recipient_public_key) != 32:
        raise BadInput("public_key must be a raw 32-byte X25519 key.")
    key = _ProjectKeyOnce(project=project, by=by, kek=kek)
    try:
        _header_validate(project=project, key=key, header=header)
        if c4gh.parse_header(header, key()).edit_list is not None:
            raise BadInput("Crypt4GH files with an edit list are not supported; "
                           "encrypt the whole file.")
        return headers_reencrypt(project=project, user=by, kek=kek, headers=[header],
                                 recipient_public_key=recipient_public_key)[0]
    except KeyAccessError as exc:
        raise NotAllowed(str(exc))


def _parts_validate(*, upload: Upload, parts: Sequence[tuple[int, str]],
                    stored: list, size_stored: int) -> None:
    numbers = [n for n, _ in parts]
    if not parts or numbers != list(range(1, len(parts) + 1)):
        raise BadInput("List every part once, numbered 1..n in ascending order.")
    by_number = {p.number: p for p in stored}
    for n, etag in parts:
        have = by_number.get(n)
        if have is None:
            raise StorageRejected(f"Part {n} is not stored; upload it (resume) first.",
                                  part_number=n)
        if have.etag != etag.strip().strip('"'):
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


def _folders_add(project: Project, folder: str, *, files: int, original: int,
                 stored: int) -> None:
    """Add to the recursive totals of ``folder`` and its ancestors (creating them)."""
    paths = path_ancestors(folder)
    Folder.objects.bulk_create(
        [Folder(project=project, path=p, parent=path_split(p)[0] if p else "",
                name=path_split(p)[1] if p else "") for p in paths],
        ignore_conflicts=True)
    # Row locks in path order: one multi-row UPDATE locks them in scan order, which
    # differs between transactions once rows have moved (parallel completes into the same
    # folders deadlocked: bench/upload.py, 10 000 files on 8 threads).
    ids = list(Folder.objects.select_for_update().filter(project=project, path__in=paths)
               .order_by("path").values_list("pk", flat=True))
    Folder.objects.filter(pk__in=ids).update(
        file_count=F("file_count") + files, size_original=F("size_original") + original,
        size_stored=F("size_stored") + stored)


def _folders_subtract(project: Project, deltas: dict[str, list[int]]) -> None:
    """``deltas``: folder -> [files, original, stored] removed directly in it."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for folder, (n, o, s) in deltas.items():
        for p in path_ancestors(folder):
            t = totals[p]
            t[0] += n
            t[1] += o
            t[2] += s
    for p, (n, o, s) in sorted(totals.items()):  # path order, as _folders_add locks
        Folder.objects.filter(project=project, path=p).update(
            file_count=F("file_count") - n, size_original=F("size_original") - o,
            size_stored=F("size_stored") - s)
    # Folders exist only through their files: an emptied folder disappears.
    Folder.objects.filter(project=project, path__in=list(totals), file_count=0).exclude(
        path="").delete()


def _objects_delete_later(project: Project, keys: list[str]) -> None:
    if not keys:
        return
    project_id = project.pk

    def enqueue() -> None:
        from transfers.tasks import objects_delete

        objects_delete.delay(project_id, keys)

    transaction.on_commit(enqueue)


@dataclass
class CompleteInput:
    parts: list[tuple[int, str]]
    header: bytes
    checksum: str
    size_original: int
    size_stored: int
    compressed: bool


def _project_share_lock(project_id: int) -> None:
    """Hold the project row in SHARE mode until commit.

    Status changes and key rotation take the row FOR UPDATE, so they wait for this
    transaction (and it for them), while completes and removals — which only share it —
    do not queue behind one another. SQLite serialises every write anyway.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM projects_project WHERE id = %s FOR SHARE",
                           [project_id])


class _AssembledWrong(Exception):
    """Storage assembled an object of the wrong size (checked after completion)."""

    def __init__(self, message: str, refusal: TransferError | None = None) -> None:
        super().__init__(message)
        # A refusal found only after assembly (status changed meanwhile): the object is
        # removed and the upload aborted, then this error is what the caller gets.
        self.refusal = refusal


def upload_complete(*, upload: Upload, by: User, kek: bytes, data: CompleteInput,
                    ip: str | None = None) -> File:
    """Finish a multipart upload and record the file (and its version).

    Everything the client claims is checked before storage assembles the object, so a
    refused call leaves the upload in progress: the client fixes the part or the header
    and calls again (resume), or aborts. Only if storage itself then disagrees (the
    multipart is gone by then) is the upload closed, its reservation released and the
    object deleted, in a transaction of its own so that bookkeeping survives the error.
    """
    key = _ProjectKeyOnce(project=upload.project, by=by, kek=kek)
    return _upload_complete_one(upload=upload, by=by, key=key, data=data, ip=ip)


def uploads_complete(*, project: Project, by: User, kek: bytes,
                     items: Sequence[tuple[str, CompleteInput]],
                     ip: str | None = None) -> list[File | TransferError]:
    """Complete several uploads of ``project`` (by upload id): per item the file or why it
    was refused (the same refusals as :func:`upload_complete`, each item in a transaction
    of its own). The project key is unlocked once for all the headers."""
    if not 1 <= len(items) <= UPLOAD_BATCH_MAX:
        raise BadInput(f"Give 1 to {UPLOAD_BATCH_MAX} uploads per batch.")
    from transfers.selectors import uploads_get

    uploads = uploads_get(project=project, user=by, public_ids=[i for i, _ in items])
    key = _ProjectKeyOnce(project=project, by=by, kek=kek)
    # What storage holds, asked for all uploads at once (each item still checks it before
    # assembly, and storage refuses a complete whose ETags are not the stored parts').
    mine = [u for u in dict.fromkeys(uploads.values()) if isinstance(u, Upload)
            and u.status == UploadStatus.IN_PROGRESS]
    backend = storage_for_project(project)
    listed = dict(zip((u.pk for u in mine), _storage_map(
        lambda u: backend.list_parts(project.bucket, u.object_key, u.multipart_id), mine),
        strict=True))
    out: list[File | TransferError] = []
    for public_id, data in items:
        upload = uploads[public_id]
        if isinstance(upload, TransferError):
            out.append(upload)
            continue
        stored = listed.pop(upload.pk, None)  # a repeated id asks storage again
        try:
            out.append(_upload_complete_one(
                upload=upload, by=by, key=key, data=data, ip=ip, backend=backend,
                stored_parts=None if isinstance(stored, TransferError) else stored))
        except TransferError as exc:
            out.append(exc)
    return out


def _upload_complete_one(*, upload: Upload, by: User, key: _ProjectKeyOnce,
                         data: CompleteInput, ip: str | None,
                         backend: StorageBackend | None = None,
                         stored_parts: list | None = None) -> File:
    try:
        with transaction.atomic():
            return _upload_complete(upload=upload, by=by, key=key, data=data, ip=ip,
                                    backend=backend, stored_parts=stored_parts)
    except _AssembledWrong as exc:
        with transaction.atomic():
            _upload_finish(upload, UploadStatus.ABORTED)
            _objects_delete_later(upload.project, [upload.object_key])
            audit_record(action="upload.abort", actor=by, project=upload.project,
                         target=upload.path, ip=ip,
                         details={"upload": upload.public_id, "reason": str(exc)})
        raise exc.refusal or BadInput(str(exc))


def _upload_complete(*, upload: Upload, by: User, key: _ProjectKeyOnce, data: CompleteInput,
                     ip: str | None, backend: StorageBackend | None,
                     stored_parts: list | None) -> File:
    upload = Upload.objects.select_for_update().get(pk=upload.pk)
    _require_in_progress(upload)
    # Re-read: the status may have changed since the request's first check.
    project = Project.objects.select_related("unit").get(pk=upload.project_id)
    upload.project = project
    transfer_check(project=project, user=by, op=Op.UPLOAD)
    if upload.created_by_id != by.pk:
        raise NotAllowed("This upload was started by another user.")
    if data.size_original != upload.size_original:
        raise BadInput(f"size_original {data.size_original} differs from the "
                       f"{upload.size_original} announced at start.")
    if not _SHA256.match(data.checksum or ""):
        raise BadInput("checksum must be the SHA-256 of the original as 64 hex digits.")
    if not data.compressed and data.size_stored != c4gh.stored_size(upload.size_original):
        raise BadInput(f"Stored size mismatch: {upload.size_original} B uncompressed give "
                       f"{c4gh.stored_size(upload.size_original)} B of segments, "
                       f"not {data.size_stored}.")
    _header_validate(project=project, key=key, header=data.header)
    # A batch resolves the project's backend once (location query, credential unsealing).
    backend = backend or storage_for_project(project)
    recovered = False
    if stored_parts is None:
        try:
            stored_parts = backend.list_parts(project.bucket, upload.object_key,
                                              upload.multipart_id)
        except StorageRejected as exc:
            # An earlier complete assembled the object and then lost its transaction (a
            # crash, a lock timeout): record what storage holds if it is what the client
            # sent, instead of leaving an object no row knows about.
            if exc.details.get("storage_code") != "NoSuchUpload":
                raise
            _assembled_check(backend=backend, upload=upload, data=data, missing=exc)
            recovered = True
    if not recovered:
        _parts_validate(upload=upload, parts=data.parts, stored=stored_parts,
                        size_stored=data.size_stored)
    if data.size_stored > upload.reserved_bytes:
        # Compression made it bigger than announced: the excess needs quota too.
        _lock_unit(project)
        _quota_check(unit=project.unit, extra=data.size_stored - upload.reserved_bytes)
    existing = File.objects.select_for_update().filter(project=project,
                                                       path=upload.path).first()
    if existing is not None and not upload.overwrite:
        raise Conflict(f"{upload.path} was created meanwhile; start again with overwrite.")
    if existing is not None and project.released:
        # Released since the upload started: researchers may already have this file.
        raise NotAllowed(released_files_message(project, "replaced"))
    if not recovered:
        backend.complete_multipart(project.bucket, upload.object_key, upload.multipart_id,
                                   data.parts)
    actual = backend.head_size(project.bucket, upload.object_key)
    if actual != data.size_stored:
        raise _AssembledWrong(f"Stored size mismatch: storage holds {actual} B, "
                              f"expected {data.size_stored}.")
    # The rule once more, now under the project row lock held until commit (taken only
    # here, after the storage calls, so completes do not queue behind each other's
    # storage round trips): a key rotation starting meanwhile waits for this commit and
    # then sees the new header, or this complete sees the project busy; a release
    # meanwhile forbids replacing a delivered file.
    _project_share_lock(upload.project_id)
    project = Project.objects.select_related("unit").get(pk=upload.project_id)
    upload.project = project
    try:
        transfer_check(project=project, user=by, op=Op.UPLOAD)
        if existing is not None and project.released:
            raise NotAllowed(released_files_message(project, "replaced"))
    except TransferError as refusal:
        raise _AssembledWrong(str(refusal), refusal) from refusal
    now = timezone.now()
    folder, name = path_split(upload.path)
    old_key = None
    if existing is not None:
        old_key = existing.object_key
        FileVersion.objects.filter(file=existing, deleted_at__isnull=True).update(
            deleted_at=now)
        _folders_subtract(project, {folder: [1, existing.size_original,
                                             existing.size_stored]})
        f = existing
    else:
        f = File(project=project, path=upload.path, name=name, folder=folder)
    f.object_key = upload.object_key
    f.size_original = upload.size_original
    f.size_stored = data.size_stored
    f.compressed = data.compressed
    f.header = data.header
    f.checksum = data.checksum
    f.uploaded_at = now
    f.uploaded_by = by
    f.last_downloaded_at = None
    f.save()
    FileVersion.objects.create(project=project, file=f, object_key=f.object_key,
                               size_stored=f.size_stored, uploaded_at=now)
    _folders_add(project, folder, files=1, original=f.size_original, stored=f.size_stored)
    _upload_finish(upload, UploadStatus.COMPLETED)
    if old_key:
        # The old version stays as a FileVersion row (invoicing); its object goes.
        _objects_delete_later(project, [old_key])
    audit_record(action="file.upload", actor=by, project=project, target=f.path, ip=ip,
                 details={"upload": upload.public_id, "size_stored": f.size_stored,
                          "overwrote": bool(old_key)})
    return f


def multipart_etag(parts: Sequence[tuple[int, str]]) -> str:
    """The ETag S3 gives an object assembled from these parts: MD5 of the parts' MD5s."""
    digests = b"".join(bytes.fromhex(etag.strip().strip('"')) for _, etag in sorted(parts))
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


def _upload_finish(upload: Upload, status: str) -> None:
    upload.status = status
    upload.finished_at = timezone.now()
    upload.save(update_fields=["status", "finished_at"])


@transaction.atomic
def upload_abort(*, upload: Upload, by: User | None, ip: str | None = None) -> Upload:
    """Abort the multipart upload and release the reservation. Idempotent."""
    upload = Upload.objects.select_for_update(of=("self",)).select_related(
        "project", "project__unit").get(pk=upload.pk)
    if upload.status != UploadStatus.IN_PROGRESS:
        return upload
    project = upload.project
    backend = storage_for_project(project)
    backend.abort_multipart(project.bucket, upload.object_key, upload.multipart_id)
    # An upload still in progress owns no catalogued object, yet its object may exist:
    # storage assembled it and then the complete's transaction failed (the multipart is
    # gone, the row says in progress). Its random key is this upload's alone: delete it.
    backend.delete_objects(project.bucket, [upload.object_key])
    _upload_finish(upload, UploadStatus.ABORTED)
    audit_record(action="upload.abort", actor=by, project=project, target=upload.path,
                 ip=ip, details={"upload": upload.public_id})
    return upload


def uploads_abort_stale(*, older_than: dt.timedelta | None = None,
                        batch_size: int = 200) -> int:
    """Abort uploads untouched for DDS_UPLOAD_STALE_HOURS; a storage failure on one is
    logged and left for the next run. Returns how many were aborted."""
    older_than = older_than or dt.timedelta(hours=settings.DDS_UPLOAD_STALE_HOURS)
    cutoff = timezone.now() - older_than
    done = 0
    ids = list(Upload.objects.filter(status=UploadStatus.IN_PROGRESS, created_at__lt=cutoff)
               .order_by("created_at").values_list("pk", flat=True)[:batch_size])
    for upload in Upload.objects.filter(pk__in=ids).select_related("project", "project__unit"):
        try:
            upload_abort(upload=upload, by=None)
            done += 1
        except StorageUnavailable:
            logger.warning("storage unreachable aborting upload %s; retrying next run",
                           upload.public_id)
    return done


# =========================================================================== catalogue


def _files_delete(project: Project, files: list[File]) -> list[str]:
    """Delete File rows, close their versions, fix folder totals; returns object keys."""
    if not files:
        return []
    now = timezone.now()
    ids = [f.pk for f in files]
    deltas: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for f in files:
        d = deltas[f.folder]
        d[0] += 1
        d[1] += f.size_original
        d[2] += f.size_stored
    FileVersion.objects.filter(file_id__in=ids, deleted_at__isnull=True).update(
        deleted_at=now)
    File.objects.filter(pk__in=ids).delete()
    _folders_subtract(project, deltas)
    return [f.object_key for f in files]


_DELETE_FIELDS = ("id", "path", "folder", "object_key", "size_original", "size_stored")


@transaction.atomic
def files_remove(*, project: Project, by: User, paths: Sequence[str],
                 ip: str | None = None) -> dict:
    """Remove files by path. Unknown paths are reported, not an error."""
    if not paths or len(paths) > 10_000:
        raise BadInput("Give 1 to 10 000 paths.")
    wanted = {path_normalise(p) for p in paths}
    # Re-checked under the project lock: a release racing this removal wins or waits.
    _project_share_lock(project.pk)
    project = Project.objects.select_related("unit").get(pk=project.pk)
    transfer_check(project=project, user=by, op=Op.REMOVE)
    files = list(File.objects.select_for_update().filter(project=project, path__in=wanted)
                 .only(*_DELETE_FIELDS))
    keys = _files_delete(project, files)
    _objects_delete_later(project, keys)
    removed = sorted(f.path for f in files)
    audit_record(action="file.remove", actor=by, project=project,
                 target=removed[0] if len(removed) == 1 else f"{len(removed)} files", ip=ip,
                 details={"count": len(removed), "paths": removed[:50]})
    return {"removed": removed, "not_found": sorted(wanted - set(removed))}


def folder_remove(*, project: Project, by: User, folder: str,
                  ip: str | None = None) -> dict:
    """Remove a folder and everything under it; large folders go to a Celery task."""
    folder = path_normalise(folder, allow_root=True)
    row = Folder.objects.filter(project=project, path=folder).first()
    count = row.file_count if row else 0
    if row is None and folder:
        raise BadInput(f"No folder {folder!r} in {project.public_id}.")
    if count > settings.DDS_FOLDER_REMOVE_SYNC_LIMIT:
        with transaction.atomic():
            audit_record(action="folder.remove", actor=by, project=project,
                         target=folder or "/", ip=ip,
                         details={"files": count, "queued": True})
            project_id, user_id = project.pk, by.pk

            def enqueue() -> None:
                from transfers.tasks import folder_remove_task

                folder_remove_task.delay(project_id, folder, user_id)

            transaction.on_commit(enqueue)
        return {"folder": folder, "files": count, "queued": True}
    removed = folder_remove_batches(project=project, folder=folder)
    audit_record(action="folder.remove", actor=by, project=project, target=folder or "/",
                 ip=ip, details={"files": removed, "queued": False})
    return {"folder": folder, "files": removed, "queued": False}


def folder_remove_batches(*, project: Project, folder: str, batch_size: int = 1000) -> int:
    """Remove files under ``folder`` in committed batches (resumable, idempotent)."""
    total = 0
    while True:
        with transaction.atomic():
            batch = list(files_under(project=project, folder=folder).select_for_update(
                skip_locked=True).order_by("pk").only(*_DELETE_FIELDS)[:batch_size])
            if not batch:
                return total
            _objects_delete_later(project, _files_delete(project, batch))
        total += len(batch)


def objects_delete(*, project: Project, keys: Sequence[str]) -> None:
    """Delete objects that no row references any more (after overwrite/removal)."""
    storage_for_project(project).delete_objects(project.bucket, list(keys))


def folders_rebuild(*, project: Project) -> int:
    """Recompute the Folder rows of a project from its files (repair; bulk loads)."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    totals[""]  # the root always exists
    for folder, original, stored in (File.objects.filter(project=project)
                                     .values_list("folder", "size_original", "size_stored")
                                     .iterator(chunk_size=5000)):
        for p in path_ancestors(folder):
            t = totals[p]
            t[0] += 1
            t[1] += original
            t[2] += stored
    with transaction.atomic():
        Folder.objects.filter(project=project).delete()
        Folder.objects.bulk_create(
            [Folder(project=project, path=p, parent=path_split(p)[0] if p else "",
                    name=path_split(p)[1] if p else "", file_count=n, size_original=o,
                    size_stored=s) for p, (n, o, s) in totals.items()], batch_size=2000)
    return len(totals)


# =========================================================================== download

DOWNLOAD_BATCH_MAX = 1000


@transaction.atomic
def files_download_prepare(*, project: Project, user: User, kek: bytes,
                           recipient_public_key: bytes, paths: Sequence[str] | None = None,
                           folder: str | None = None, after: str = "",
                           limit: int = DOWNLOAD_BATCH_MAX, ip: str | None = None) -> dict:
    """Per file: the header re-encrypted to the client's ephemeral key, checksum, sizes
    and a presigned GET URL (at most one hour). Records the download time.

    ``paths`` or ``folder`` (or neither: everything), keyset-paginated by path.
    """
    from keys.services import KeyAccessError, headers_reencrypt

    limit = max(1, min(limit, DOWNLOAD_BATCH_MAX))
    if len(recipient_public_key) != 32:
        raise BadInput("public_key must be a raw 32-byte X25519 key.")
    missing: list[str] = []
    if paths is not None:
        if len(paths) > DOWNLOAD_BATCH_MAX:
            raise BadInput(f"At most {DOWNLOAD_BATCH_MAX} paths per request.")
        wanted = {path_normalise(p) for p in paths}
        qs = File.objects.filter(project=project, path__in=wanted)
    else:
        qs = files_under(project=project,
                         folder=path_normalise(folder or "", allow_root=True))
    if after:
        qs = qs.filter(path__gt=after)
    files = list(qs.order_by("path")[:limit + 1])
    more = len(files) > limit
    files = files[:limit]
    if paths is not None:
        missing = sorted(wanted - {f.path for f in files})
    try:
        headers = headers_reencrypt(project=project, user=user, kek=kek,
                                    headers=[bytes(f.header) for f in files],
                                    recipient_public_key=recipient_public_key)
    except KeyAccessError as exc:
        raise NotAllowed(str(exc))
    except c4gh.C4GHError as exc:
        raise BadInput(f"Cannot re-encrypt a header: {exc}")
    backend = storage_for_project(project)
    ttl = min(settings.DDS_DOWNLOAD_URL_TTL, 3600)
    now = timezone.now()
    File.objects.filter(pk__in=[f.pk for f in files]).update(last_downloaded_at=now)
    out = [{"path": f.path, "header": h, "checksum": f.checksum,
            "size_original": f.size_original, "size_stored": f.size_stored,
            "compressed": f.compressed,
            "url": backend.presign_get(project.bucket, f.object_key, ttl)}
           for f, h in zip(files, headers, strict=True)]
    audit_record(action="file.download", actor=user, project=project, ip=ip,
                 target=files[0].path if len(files) == 1 else f"{len(files)} files",
                 details={"count": len(files), "paths": [f.path for f in files[:50]]})
    return {"files": out, "missing": missing, "expires_in": ttl,
            "next": files[-1].path if more else None}


# =========================================================================== purge


def project_storage_purge(*, project: Project, batch_size: int = 1000) -> int:
    """Remove every object of a project (and abort its multipart uploads), in batches.

    Storage is listed, not the database, so objects whose rows are already gone (a
    crashed earlier run, a concurrent run) are found too; deleting a missing key or
    aborting a finished upload is not an error, so running twice or concurrently is safe.
    ``StorageUnavailable`` propagates: the caller retries later and the next run finishes.
    Then File rows are deleted and live FileVersions closed. Returns objects removed.
    """
    backend: StorageBackend = storage_for_project(project)
    while True:
        pending = backend.list_multipart(project.bucket, batch_size)
        if not pending:
            break
        for key, upload_id in pending:
            backend.abort_multipart(project.bucket, key, upload_id)
    removed = 0
    while True:
        keys = backend.list_objects(project.bucket, batch_size)
        if not keys:
            break
        backend.delete_objects(project.bucket, keys)
        removed += len(keys)
    now = timezone.now()
    Upload.objects.filter(project=project, status=UploadStatus.IN_PROGRESS).update(
        status=UploadStatus.ABORTED, finished_at=now)
    while True:
        with transaction.atomic():
            ids = list(File.objects.filter(project=project).values_list("pk", flat=True)
                       [:batch_size])
            if not ids:
                break
            FileVersion.objects.filter(file_id__in=ids, deleted_at__isnull=True).update(
                deleted_at=now)
            File.objects.filter(pk__in=ids).delete()
    # Versions whose File row was already gone (earlier partial run).
    FileVersion.objects.filter(project=project, deleted_at__isnull=True).update(
        deleted_at=now)
    Folder.objects.filter(project=project).delete()
    audit_record(action="project.storage_purge", project=project,
                 details={"objects_removed": removed})
    return removed


# =========================================================================== usage


def _hours(delta: dt.timedelta) -> Decimal:
    return Decimal(max(delta.total_seconds(), 0)) / Decimal(3600)


def usage_record(*, period_start: dt.datetime, period_end: dt.datetime) -> int:
    """Byte-hours of every project over [start, end), from each FileVersion's lifetime.

    Idempotent: re-running a period replaces its rows. Returns the number of projects.
    """
    if period_end <= period_start:
        raise BadInput("The period must end after it starts.")
    totals: dict[int, Decimal] = defaultdict(Decimal)
    versions = (FileVersion.objects.filter(uploaded_at__lt=period_end)
                .filter(Q(deleted_at__isnull=True) | Q(deleted_at__gt=period_start))
                .values_list("project_id", "size_stored", "uploaded_at", "deleted_at"))
    for project_id, size, start, end in versions.iterator(chunk_size=5000):
        lo = max(start, period_start)
        hi = min(end or period_end, period_end)
        totals[project_id] += size * _hours(hi - lo)
    with transaction.atomic():
        for project_id, byte_hours in totals.items():
            Usage.objects.update_or_create(
                project_id=project_id, period_start=period_start,
                defaults={"period_end": period_end,
                          "byte_hours": byte_hours.quantize(Decimal("0.01"))})
        audit_record(action="usage.record", target=f"{period_start:%Y-%m-%d}",
                     details={"projects": len(totals), "period_end": period_end})
    return len(totals)


def usage_record_last_month(*, now: dt.datetime | None = None) -> int:
    now = timezone.localtime(now or timezone.now())
    this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = (this_month - dt.timedelta(days=1)).replace(day=1)
    return usage_record(period_start=last_month, period_end=this_month)
