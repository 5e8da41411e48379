"""Test settings: production code paths with cheap crypto costs.

Argon2id and RSA costs are turned down so the suite stays fast; one test in keys/tests
runs the production parameters explicitly.
"""

import os
import secrets

# A fresh random secret per run: no secret lives in a fixture file.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(64))
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
# Live-server tests put nginx (on loopback) in front, as the ingress.
os.environ.setdefault("DDS_TRUSTED_PROXIES", "127.0.0.1,::1")
# The suite runs the production code paths with DEBUG off, on the embedded fallbacks for
# mail and tasks (locmem outbox, eager Celery); the production-shape test sets everything.
os.environ.setdefault("DDS_ALLOW_EMBEDDED", "1")

from ddsite.settings import *  # noqa: F403

PASSWORD_HASHERS = ["ddsite.hashers.FastArgon2PasswordHasher"]
DDS_KDF_TIME_COST = 1
DDS_KDF_MEMORY_KIB = 256
DDS_KDF_PARALLELISM = 1
DDS_USER_RSA_BITS = 2048
SECURE_SSL_REDIRECT = False
CELERY_TASK_ALWAYS_EAGER = True
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_AUTOREFRESH = True
