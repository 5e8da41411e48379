from celery import shared_task
from django.db import OperationalError

from keys.rotation import project_key_rotation_run


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=8,
             acks_late=True)
def rotate_project_key(rotation_id: int) -> None:
    """Only the rotation's id travels through the broker; the keys stay sealed in the DB."""
    project_key_rotation_run(rotation_id=rotation_id)
