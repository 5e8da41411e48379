"""Starting uploads, their part URLs, resuming, aborting; the quota they reserve.

An upload reserves its stored size against the unit's quota when it starts (under the
unit's row lock, so two starts cannot both pass) and opens a multipart upload in storage;
the client then PUTs the parts to presigned URLs and completes it
(:mod:`transfers.services.completion`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import math
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict

from django.conf import settings
from django.db import transaction
from django.utils import timezone

import c4gh
from accounts.models import Unit, User
from audit.actions import AuditAction
from audit.services import audit_record
from core import metrics
from core.errors import DDSError
from projects.models import Project
from transfers.errors import BadInput, Conflict, NotAllowed, QuotaExceeded, StorageUnavailable
from transfers.models import File, Folder, Upload, UploadStatus
from transfers.paths import path_ancestors, path_normalise, path_split
from transfers.selectors import (
    Op,
    released_files_message,
    transfer_check,
    unit_bytes_used,
    upload_stale_cutoff,
    uploads_open_for_object,
)
from transfers.services.headers import (
    ProjectKeyOnce,
    header_validate,
    headers_for_recipient,
    recipient_key_check,
)
from transfers.storage import StorageBackend, StoredPart, storage_for_project
from transfers.storage.base import single_put_backend
from transfers.storage.parallel import storage_map

logger = logging.getLogger(__name__)

#: S3 allows at most 10 000 parts per multipart upload.
MAX_PARTS = 10_000
#: The largest object S3 accepts (5 TiB); with MAX_PARTS this fixes the largest part size.
MAX_OBJECT_BYTES = 5 * 1024**4
PART_URL_BATCH_MAX = 100
#: Uploads started or completed by one batch request.
UPLOAD_BATCH_MAX = 200


def part_url_ttl() -> int:
    """Seconds a presigned part URL lives (DDS_UPLOAD_PART_URL_TTL)."""
    ttl: int = settings.DDS_UPLOAD_PART_URL_TTL
    return ttl


#: The part checksum a client may ask for at start ("part_checksum").
PART_CHECKSUM_CRC32 = "crc32"
_CRC32_B64 = re.compile(r"^[A-Za-z0-9+/]{6}==$")


def part_checksums_enabled() -> bool:
    """The operator's switch (DDS_STORAGE_PART_CHECKSUMS): off for an S3-compatible store
    that lacks checksum support; uploads are then never checksummed."""
    return bool(settings.DDS_STORAGE_PART_CHECKSUMS)


def crc32_check(value: object, *, what: str) -> str:
    """A CRC32 as S3 takes it in ``x-amz-checksum-crc32``: standard base64 of the 4
    big-endian bytes (8 characters, e.g. ``AAAAAA==`` for no bytes). ``what`` names it in
    the refusal."""
    if isinstance(value, str) and _CRC32_B64.match(value):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        # Canonical only ("AAAAAB==" decodes too): storage compares the text.
        if len(raw) == 4 and base64.b64encode(raw).decode() == value:
            return value
    raise BadInput(f"{what}: crc32 must be the base64 of the CRC32's 4 big-endian bytes "
                   "(8 characters, e.g. 'AAAAAA==' for an empty part).")


def part_size_for(stored_bytes: int) -> int:
    """Part size: a whole number of Crypt4GH segments, at least the S3 minimum, and large
    enough that the whole object fits in 10 000 parts (5 TiB -> 7 993 segments/part)."""
    min_segments = max(1, int(settings.DDS_UPLOAD_MIN_PART_SEGMENTS))
    needed = c4gh.segment_count(stored_bytes)
    segments = max(min_segments, math.ceil(needed / MAX_PARTS))
    return segments * c4gh.CIPHER_SEGMENT_SIZE


def upload_max_parts(upload: Upload) -> int:
    return max(1, math.ceil(upload.reserved_bytes / upload.part_size))


def batch_size_check(count: int) -> None:
    if not 1 <= count <= UPLOAD_BATCH_MAX:
        raise BadInput(f"Give 1 to {UPLOAD_BATCH_MAX} uploads per batch.")


# --------------------------------------------------------------------------- quota


class QuotaLedger:
    """A unit's usage, read once under its row lock; reservations add up as granted.

    Callers hold the unit row lock (:meth:`locked`), so two concurrent reservations
    cannot both pass, and a batch reads the usage once for all its items.
    """

    def __init__(self, unit: Unit) -> None:
        self.unit = unit
        self.stored, self.reserved = unit_bytes_used(unit_id=unit.pk)

    @classmethod
    def locked(cls, project: Project) -> QuotaLedger:
        """The ledger of the project's unit, its row locked until commit."""
        return cls(Unit.objects.select_for_update().get(pk=project.unit_id))

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


# --------------------------------------------------------------------------- start


@dataclass
class StartInput:
    path: str
    size_original: int
    overwrite: bool = False
    #: The exact bytes the client will PUT (its ciphertext, already made), when it can do
    #: single PUTs: a file that fits in one part then gets one presigned PutObject.
    size_stored: int | None = None
    #: The CRC32 of those bytes (checksummed uploads): signed into the single PUT's URL.
    crc32: str | None = None


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


def _start_input_normalise(item: StartInput) -> StartInput:
    if item.size_original < 0 or item.size_original > MAX_OBJECT_BYTES:
        raise BadInput(f"size_original must be between 0 and {MAX_OBJECT_BYTES} bytes.")
    if item.size_stored is not None and item.size_stored < 0:
        raise BadInput("size_stored must not be negative.")
    crc32 = None if item.crc32 is None else crc32_check(item.crc32, what=item.path)
    return StartInput(path_normalise(item.path), item.size_original, item.overwrite,
                      item.size_stored, crc32)


def _single_put_size(item: StartInput, reserved: int, part_size: int,
                     checksum: str) -> int | None:
    """The signed length of a single-PUT upload, or None (multipart): only for what fits
    in one part and, if compressed, no more than reserved (the quota was checked for it);
    a checksummed one also needs the CRC32 of its bytes (else multipart it is)."""
    size = item.size_stored
    if size is None or reserved > part_size or size > reserved:
        return None
    if checksum and item.crc32 is None:
        return None
    return size


def _upload_admit(*, project: Project, by: User, item: StartInput, state: _PathState,
                  ledger: QuotaLedger, single_put: bool = False,
                  checksum: str = "") -> Upload:
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
    part_size = part_size_for(reserved)
    upload = Upload(public_id=secrets.token_urlsafe(16), project=project, path=path,
                    object_key=secrets.token_hex(20), size_original=item.size_original,
                    reserved_bytes=reserved, part_size=part_size,
                    put_size=_single_put_size(item, reserved, part_size, checksum)
                    if single_put else None, part_checksum=checksum,
                    overwrite=item.overwrite, created_by=by)
    state.active[path] = upload.public_id
    # Later items of the same batch see this path's folders as taken by folders.
    state.folders.update(ancestors)
    return upload


#: Per item of a batch, in the order sent: what it became, or why it was refused.
StartResult = Upload | DDSError


def _uploads_admit(*, project: Project, by: User, todo: list[tuple[int, StartInput]],
                   out: dict[int, StartResult], single_put: bool,
                   checksum: str) -> list[tuple[int, Upload]]:
    """The rules, under one unit lock and one read of the paths, for every item."""
    ledger = QuotaLedger.locked(project)
    state = _PathState.load(project, {item.path for _, item in todo})
    admitted: list[tuple[int, Upload]] = []
    for i, item in todo:
        try:
            admitted.append((i, _upload_admit(project=project, by=by, item=item, state=state,
                                              ledger=ledger, single_put=single_put,
                                              checksum=checksum)))
        except DDSError as exc:
            out[i] = exc
    return admitted


def _multiparts_open(*, project: Project, admitted: list[tuple[int, Upload]],
                     out: dict[int, StartResult]) -> list[Upload]:
    """Open the admitted uploads' multipart uploads in storage, in parallel (a single-PUT
    upload needs nothing opened: its object is created by the client's PUT)."""
    backend = storage_for_project(project)
    backend.create_bucket(project.bucket)
    multi = [(i, u) for i, u in admitted if u.put_size is None]
    ids = storage_map(lambda u: backend.start_multipart(
        project.bucket, u.object_key, checksum=bool(u.part_checksum)), [u for _, u in multi])
    started: list[Upload] = []
    for i, upload in admitted:
        if upload.put_size is not None:
            started.append(upload)
            out[i] = upload
    for (i, upload), multipart_id in zip(multi, ids, strict=True):
        if isinstance(multipart_id, StorageUnavailable):
            raise multipart_id  # nothing is written: the whole batch can be retried
        if isinstance(multipart_id, DDSError):
            out[i] = multipart_id  # (its reservation dies with the unsaved row)
            continue
        upload.multipart_id = multipart_id
        started.append(upload)
        out[i] = upload
    return started


def _uploads_record(*, project: Project, by: User, started: list[Upload],
                    ip: str | None) -> None:
    """One INSERT and one audit event for the batch (not per file)."""
    Upload.objects.bulk_create(started)
    one = [{"upload": u.public_id, "path": u.path, "size_original": u.size_original,
            "reserved_bytes": u.reserved_bytes, "overwrite": u.overwrite} for u in started]
    audit_record(action=AuditAction.UPLOAD_START, actor=by, project=project,
                 target=started[0].path if len(started) == 1 else f"{len(started)} uploads",
                 ip=ip, details=one[0] if len(one) == 1 else {"uploads": one})


@transaction.atomic
def uploads_start(*, project: Project, by: User, items: Sequence[StartInput],
                  ip: str | None = None, single_put: bool = False,
                  part_checksum: str | None = None) -> list[StartResult]:
    """Start several uploads under one unit lock: per item the upload or why it was refused
    (the same refusals as :func:`upload_start`); a refused item changes nothing.

    ``single_put`` (the client can do them): an item that fits in one part and says its
    ``size_stored`` becomes a single-PUT upload (``put_size``; :func:`uploads_put_urls`)
    if the project's backend offers them; the others are multipart uploads as before.

    ``part_checksum="crc32"`` (the client computes them): unless the operator switched
    part checksums off, the uploads are checksummed (``Upload.part_checksum``): every
    part URL signs the part's CRC32, storage verifies it, the complete names it; a
    single PUT then also needs the item's ``crc32``."""
    batch_size_check(len(items))
    if part_checksum not in (None, PART_CHECKSUM_CRC32):
        raise BadInput(f"part_checksum must be '{PART_CHECKSUM_CRC32}' (or absent).")
    checksum = (PART_CHECKSUM_CRC32 if part_checksum and part_checksums_enabled()
                else "")
    out: dict[int, StartResult] = {}
    todo: list[tuple[int, StartInput]] = []
    for i, item in enumerate(items):
        try:
            todo.append((i, _start_input_normalise(item)))
        except DDSError as exc:
            out[i] = exc
    single_put = single_put and single_put_backend(storage_for_project(project)) is not None
    admitted = (_uploads_admit(project=project, by=by, todo=todo, out=out,
                               single_put=single_put, checksum=checksum) if todo else [])
    started = _multiparts_open(project=project, admitted=admitted, out=out) if admitted else []
    if started:
        _uploads_record(project=project, by=by, started=started, ip=ip)
    return [out[i] for i in range(len(items))]


def upload_start(*, project: Project, by: User, path: str, size_original: int,
                 overwrite: bool = False, ip: str | None = None,
                 part_checksum: str | None = None) -> Upload:
    """Reserve quota, create the project's bucket if needed, start a multipart upload."""
    [result] = uploads_start(project=project, by=by, ip=ip, part_checksum=part_checksum,
                             items=[StartInput(path, size_original, overwrite)])
    if isinstance(result, DDSError):
        raise result
    return result


def upload_header_check(*, project: Project, by: User, kek: bytes, header: bytes,
                        recipient_public_key: bytes) -> bytes:
    """Check, before anything is uploaded, that a file encrypted elsewhere (a whole
    Crypt4GH file's header) is addressed to the project's key; return that header
    re-encrypted to the client's ephemeral key, so the client can verify and checksum
    the data it is about to send (as on download, the project key stays here)."""
    transfer_check(project=project, user=by, op=Op.UPLOAD)
    recipient_key_check(recipient_public_key)
    info = header_validate(project=project, key=ProjectKeyOnce(project=project, by=by,
                                                               kek=kek), header=header)
    if info.edit_list is not None:
        raise BadInput("Crypt4GH files with an edit list are not supported; "
                       "encrypt the whole file.")
    return headers_for_recipient(project=project, user=by, kek=kek, headers=[header],
                                 recipient_public_key=recipient_public_key)[0]


# --------------------------------------------------------------------------- parts


class PartUrl(TypedDict):
    part_number: int
    url: str


def require_in_progress(upload: Upload) -> None:
    if upload.status != UploadStatus.IN_PROGRESS:
        raise Conflict(f"Upload {upload.public_id} is {upload.get_status_display().lower()}.",
                       upload_status=upload.status)


def upload_part_urls(*, upload: Upload, part_numbers: Sequence[int],
                     crc32s: Mapping[int, object] | None = None,
                     backend: StorageBackend | None = None) -> list[PartUrl]:
    """Short-lived presigned UploadPart URLs for a batch of parts (no state change).

    A checksummed upload (``part_checksum``) signs each part's CRC32 into its URL, so
    ``crc32s`` must give one for every part asked for; an upload that is not checksummed
    takes none (its client must not believe they are checked)."""
    require_in_progress(upload)
    if upload.put_size is not None:
        raise BadInput(f"Upload {upload.public_id} is a single PUT of {upload.put_size} B: "
                       "it has no parts (abort it and start again to resend).")
    if not part_numbers or len(part_numbers) > PART_URL_BATCH_MAX:
        raise BadInput(f"Ask for 1 to {PART_URL_BATCH_MAX} parts at a time.")
    top = upload_max_parts(upload)
    bad = [n for n in part_numbers if not 1 <= n <= top]
    if bad:
        raise BadInput(f"Part numbers must be between 1 and {top} for this upload.",
                       invalid=bad[:20])
    signed: dict[int, str | None] = dict.fromkeys(part_numbers)
    if upload.part_checksum:
        missing = [n for n in part_numbers if n not in (crc32s or {})]
        if missing:
            raise BadInput(f"Upload {upload.public_id} checksums its parts: ask with "
                           "parts: [{part_number, crc32}], a CRC32 for every part.",
                           missing_crc32=missing[:20])
        assert crc32s is not None
        signed = {n: crc32_check(crc32s[n], what=f"part {n}") for n in part_numbers}
    elif crc32s:
        raise BadInput(f"Upload {upload.public_id} does not checksum its parts: ask with "
                       "part_numbers (start it with part_checksum to have them checked).")
    backend = backend or storage_for_project(upload.project)
    ttl = part_url_ttl()
    return [{"part_number": n,
             "url": backend.presign_part(upload.project.bucket, upload.object_key,
                                         upload.multipart_id, n, ttl,
                                         max_bytes=upload.part_size, crc32=signed[n])}
            for n in sorted(signed)]


def uploads_first_part_urls(*, project: Project, uploads: Sequence[Upload],
                            count: int) -> list[list[PartUrl]]:
    """Per upload, the URLs of its first ``count`` parts (fewer if it has fewer). A
    checksummed upload gets none: its part URLs need the parts' CRC32s."""
    backend = storage_for_project(project)
    return [[] if u.put_size is not None or u.part_checksum or count == 0 else
            upload_part_urls(upload=u, backend=backend,
                             part_numbers=range(1, min(count, upload_max_parts(u)) + 1))
            for u in uploads]


def uploads_put_urls(*, project: Project, uploads: Sequence[Upload],
                     crc32s: Sequence[str | None] | None = None) -> list[str | None]:
    """Per upload, the presigned PUT of exactly ``put_size`` bytes (None: multipart);
    a checksummed one signs its CRC32 (``crc32s``, in the order of ``uploads``: the
    start items' values, checked when they started)."""
    backend = single_put_backend(storage_for_project(project))
    ttl = part_url_ttl()
    sums = list(crc32s) if crc32s is not None else [None] * len(uploads)
    out: list[str | None] = []
    for u, crc32 in zip(uploads, sums, strict=True):
        if u.put_size is None or backend is None:
            out.append(None)
            continue
        if u.part_checksum and crc32 is None:  # (cannot be: such an item is multipart)
            raise BadInput(f"{u.path}: a checksummed single PUT needs its crc32.")
        out.append(backend.presign_put(project.bucket, u.object_key, ttl, u.put_size,
                                       crc32=crc32 if u.part_checksum else None))
    return out


def upload_parts_list(*, upload: Upload) -> list[StoredPart]:
    """The parts storage holds for this upload (to resume after a failure)."""
    require_in_progress(upload)
    if upload.put_size is not None:
        return []  # a single PUT: nothing to resume, the object is all or nothing
    return storage_for_project(upload.project).list_parts(
        upload.project.bucket, upload.object_key, upload.multipart_id)


# --------------------------------------------------------------------------- abort


def upload_finish(upload: Upload, status: UploadStatus) -> None:
    upload.status = status
    upload.finished_at = timezone.now()
    upload.save(update_fields=["status", "finished_at"])


def single_put_publish(*, object_key: str, rename: Callable[[], None]) -> None:
    """Put a single PUT's body in place (``rename``) only if its upload is still in
    progress, deciding under the upload row's lock: the complete and the abort lock the
    same row, so a PUT whose body arrives after either of them writes nothing (409),
    even one that started before. The no-op UPDATE takes the lock on PostgreSQL (row)
    and on SQLite (the database's write lock) alike."""
    with transaction.atomic():
        if not uploads_open_for_object(object_key).update(status=UploadStatus.IN_PROGRESS):
            raise Conflict("This upload is finished or was aborted: its URL writes nothing "
                           "any more.")
        rename()


@transaction.atomic
def upload_abort(*, upload: Upload, by: User | None, ip: str | None = None) -> Upload:
    """Abort the multipart upload and release the reservation. Idempotent."""
    upload = Upload.objects.select_for_update(of=("self",)).select_related(
        "project", "project__unit").get(pk=upload.pk)
    if upload.status != UploadStatus.IN_PROGRESS:
        return upload
    project = upload.project
    backend = storage_for_project(project)
    if upload.multipart_id:  # (a single-PUT upload has none)
        backend.abort_multipart(project.bucket, upload.object_key, upload.multipart_id)
    # An upload still in progress owns no catalogued object, yet its object may exist:
    # storage assembled it and then the complete's transaction failed (the multipart is
    # gone, the row says in progress). Its random key is this upload's alone: delete it.
    backend.delete_objects(project.bucket, [upload.object_key])
    upload_finish(upload, UploadStatus.ABORTED)
    audit_record(action=AuditAction.UPLOAD_ABORT, actor=by, project=project,
                 target=upload.path, ip=ip, details={"upload": upload.public_id})
    return upload


def uploads_abort_stale(*, older_than: dt.timedelta | None = None,
                        batch_size: int = 200) -> int:
    """Abort uploads untouched for DDS_UPLOAD_STALE_HOURS; a storage failure on one is
    logged and left for the next run. Returns how many were aborted."""
    cutoff = upload_stale_cutoff(older_than)
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
