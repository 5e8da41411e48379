"""Project key rotation: new key pair, every stored header re-encrypted, every wrapped copy
replaced, the old private key destroyed. No object in storage is touched.

Resumable and idempotent: the task receives only the rotation's id; each batch of headers
commits on its own, and a header that already opens with the new key is skipped, so a
crash at any point followed by another run finishes the job. The key swap at the end is a
single transaction, after which no header and no wrapped copy refers to the old key.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

import c4gh
from accounts.models import User
from audit.actions import AuditAction
from audit.services import audit_record
from core.dispatch import after_commit
from core.sealing import seal, unseal
from keys import primitives
from keys.errors import RotationRefused
from keys.models import InviteProjectKey, KeyRotation, KeyRotationStatus, ProjectUserKey
from keys.services import project_private_key
from projects.models import Project
from transfers.models import File

logger = logging.getLogger(__name__)

ROTATE_TASK = "transfers.tasks.rotate_project_key"
BATCH_SIZE = 500


def _purpose(rotation_project_id: int, which: str) -> str:
    return f"key-rotation:{rotation_project_id}:{which}"


def _present(value: bytes | memoryview | None, what: str) -> bytes:
    """A key the rotation's invariants guarantee (sealed keys until it is done; a public
    key for every holder, as project_access_grant requires)."""
    if value is None:
        raise RuntimeError(f"key rotation: {what} is missing")
    return bytes(value)


def project_key_rotation_start(*, project: Project, by: User, kek: bytes,
                               ip: str | None = None) -> KeyRotation:
    """Begin a rotation (the caller must hold the project key) and queue the task."""
    with transaction.atomic():
        locked = Project.objects.select_for_update(no_key=True).get(pk=project.pk)
        running = KeyRotation.objects.filter(project=locked,
                                             status=KeyRotationStatus.RUNNING).first()
        if running is not None:
            rotation = running
        else:
            if locked.busy:
                raise RotationRefused(f"project {locked.public_id} is busy; try again later")
            if not locked.public_key:
                raise RotationRefused(f"project {locked.public_id} has no key to rotate")
            old_sk = project_private_key(project=locked, user=by, kek=kek)
            new_sk, new_pk = c4gh.generate_keypair()
            rotation = KeyRotation.objects.create(
                project=locked, new_public_key=new_pk, started_by=by,
                old_private_key_sealed=seal(old_sk, purpose=_purpose(locked.pk, "old")),
                new_private_key_sealed=seal(new_sk, purpose=_purpose(locked.pk, "new")))
            # Busy: no upload may add a header for the old key while we rotate.
            Project.objects.filter(pk=locked.pk).update(busy=True)
            audit_record(action=AuditAction.PROJECT_KEY_ROTATION_START, actor=by, project=locked,
                         ip=ip)
        after_commit(ROTATE_TASK, rotation.pk)
    return rotation


def project_key_rotation_run(*, rotation_id: int,
                             batch_size: int = BATCH_SIZE) -> KeyRotation | None:
    """Do (or finish) a rotation. Safe to call again at any point, even concurrently."""
    rotation = KeyRotation.objects.select_related("project").filter(pk=rotation_id).first()
    if rotation is None or rotation.status == KeyRotationStatus.DONE:
        return rotation
    project = rotation.project
    old_sk = unseal(_present(rotation.old_private_key_sealed, "the sealed old key"),
                    purpose=_purpose(project.pk, "old"))
    new_sk = unseal(_present(rotation.new_private_key_sealed, "the sealed new key"),
                    purpose=_purpose(project.pk, "new"))
    new_pk = bytes(rotation.new_public_key)

    _rotate_headers(rotation=rotation, old_sk=old_sk, new_sk=new_sk, new_pk=new_pk,
                    batch_size=batch_size, after_batch=True)
    _finish(rotation_id=rotation.pk, old_sk=old_sk, new_sk=new_sk, new_pk=new_pk,
            batch_size=batch_size)
    rotation.refresh_from_db()
    return rotation


def _rotate_headers(*, rotation: KeyRotation, old_sk: bytes, new_sk: bytes, new_pk: bytes,
                    batch_size: int, after_batch: bool) -> int:
    """Re-encrypt every header of the project not yet addressed to the new key, in batches
    that each commit; returns how many changed."""
    last_pk = 0
    total = 0
    while True:
        batch = list(File.objects.filter(project_id=rotation.project_id, pk__gt=last_pk)
                     .order_by("pk").only("pk", "header")[:batch_size])
        if not batch:
            return total
        with transaction.atomic():
            changed = []
            for f in batch:
                header = bytes(f.header)
                try:
                    c4gh.parse_header(header, new_sk)
                    continue  # rotated by an earlier (interrupted) run
                except c4gh.NoMatchingKeyError:
                    pass
                f.header = c4gh.reencrypt_header(header, old_sk, [new_pk])
                changed.append(f)
            File.objects.bulk_update(changed, ["header"])
            KeyRotation.objects.filter(pk=rotation.pk).update(
                files_done=F("files_done") + len(changed))
        total += len(changed)
        last_pk = batch[-1].pk
        if after_batch:
            _after_batch(rotation, last_pk)


def _after_batch(rotation: KeyRotation, last_pk: int) -> None:
    """Hook between committed batches (progress logging; tests inject crashes here)."""
    logger.info("key rotation %s: headers up to file id %s done", rotation.pk, last_pk)


@transaction.atomic
def _finish(*, rotation_id: int, old_sk: bytes, new_sk: bytes, new_pk: bytes,
            batch_size: int) -> None:
    rotation = KeyRotation.objects.select_for_update().get(pk=rotation_id)
    if rotation.status == KeyRotationStatus.DONE:
        return
    project = Project.objects.select_for_update(no_key=True).get(pk=rotation.project_id)
    # Last sweep under the project lock, before the old key is destroyed: no header may
    # be left that only the old key opens (defence in depth; uploads refuse while busy).
    _rotate_headers(rotation=rotation, old_sk=old_sk, new_sk=new_sk, new_pk=new_pk,
                    batch_size=batch_size, after_batch=False)
    rotation.refresh_from_db(fields=["files_done"])
    user_rows = list(ProjectUserKey.objects.filter(project=project).select_related("user"))
    for user_row in user_rows:
        user_row.key_encrypted = primitives.wrap_project_key(
            new_sk, _present(user_row.user.public_key, f"{user_row.user}'s public key"))
    ProjectUserKey.objects.bulk_update(user_rows, ["key_encrypted"])
    invite_rows = list(InviteProjectKey.objects.filter(project=project).select_related("invite"))
    for invite_row in invite_rows:
        invite_row.key_encrypted = primitives.wrap_project_key(
            new_sk, _present(invite_row.invite.public_key, "an invite's public key"))
    InviteProjectKey.objects.bulk_update(invite_rows, ["key_encrypted"])
    Project.objects.filter(pk=project.pk).update(public_key=new_pk, busy=False)
    # Destroy the old key: the sealed copies were its last trace on the server.
    rotation.status = KeyRotationStatus.DONE
    rotation.old_private_key_sealed = None
    rotation.new_private_key_sealed = None
    rotation.finished_at = timezone.now()
    rotation.save(update_fields=["status", "old_private_key_sealed",
                                 "new_private_key_sealed", "finished_at"])
    audit_record(action=AuditAction.PROJECT_KEY_ROTATION_FINISH, actor=rotation.started_by,
                 project=project, details={"files": rotation.files_done,
                                           "holders": len(user_rows) + len(invite_rows)})
