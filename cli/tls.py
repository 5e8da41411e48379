"""One TLS context per process, shared by every HTTP client `dds` makes.

Building a context loads the CA bundle: 29-30 ms of CPU each (cProfile of a one-file
``dds data put``: two clients, 59 ms in ``httpx.create_ssl_context``). The API client and
the storage client share this one; an ``SSLContext`` may serve many connections and
threads. Trust is httpx's default: ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` if set, certifi's
bundle otherwise.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()
