"""The Celery app. Without CELERY_BROKER_URL tasks run eagerly in-process."""

import os

from celery import Celery

from ddsite.worker_heartbeat import HeartbeatFile

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ddsite.settings")

app = Celery("ddsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.steps["worker"].add(HeartbeatFile)
app.autodiscover_tasks()
