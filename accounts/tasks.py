"""Thin Celery tasks over accounts.services."""

from celery import shared_task

from accounts.services.invites import invites_delete_expired as _invites_delete_expired


@shared_task(name="accounts.tasks.invites_delete_expired")
def invites_delete_expired() -> int:
    return _invites_delete_expired()
