"""The server's version endpoint and the check that turns away clients too old for it.

The version is the package's (``cli.version``: pyproject.toml through importlib.metadata),
the one value the CLI, the OpenAPI schema and the image label report too.

The check is plain Django middleware, outside DRF, so it answers before authentication,
throttling or any view runs: a client too old to understand today's API gets one clear
message instead of a confusing failure further in.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from cli.version import CLIENT_VERSION_HEADER, __version__

#: The oldest CLI this server accepts unless ``settings.DDS_MIN_CLIENT_VERSION`` says
#: otherwise: the first release, i.e. every client.
DEFAULT_MIN_CLIENT_VERSION = "0.1.0"
#: Clients of 0.1.0, the only release before the header, sent this User-Agent and nothing
#: else: they are 0.1.0, so raising the minimum reaches them too.
LEGACY_USER_AGENT = ("dds-cli", "0.1.0")

_VERSION_RE = re.compile(r"^v?(\d+(?:\.\d+)*)(?:[.-]?(a|b|rc|dev)\.?\d*)?(?:\+[\w.]+)?$",
                         re.IGNORECASE)


def parse_version(value: str) -> tuple[tuple[int, ...], int] | None:
    """A sortable key for a PEP 440-style version (``1.2.3``, ``1.3.0rc1``), else None.

    A pre-release sorts before its release (``1.3.0rc1`` < ``1.3.0``), so a release
    candidate does not pass a minimum of the final release.
    """
    match = _VERSION_RE.match(value.strip())
    if not match:
        return None
    release = [int(part) for part in match.group(1).split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()  # 1.2 == 1.2.0
    return tuple(release), 0 if match.group(2) else 1


def min_client_version() -> tuple[str, tuple[tuple[int, ...], int]]:
    """The configured minimum and its sort key; a minimum that is no version is an error."""
    minimum = getattr(settings, "DDS_MIN_CLIENT_VERSION", "") or DEFAULT_MIN_CLIENT_VERSION
    key = parse_version(minimum)
    if key is None:
        raise ImproperlyConfigured(f"DDS_MIN_CLIENT_VERSION is not a version: {minimum!r}")
    return minimum, key


def upgrade_message(client: str, minimum: str) -> str:
    # No package index is named: "dds" on a public index need not be this project.
    return (f"This DDS server ({__version__}) needs the dds client {minimum} or newer; "
            f"you have {client}. Upgrade the client the way it was installed (your "
            "facility's instructions) and run the command again.")


class ClientVersionMiddleware:
    """Answer API requests from a ``dds`` client older than the minimum with HTTP 426.

    Only requests that say they come from the CLI are checked (the header, or the old
    client's User-Agent): browsers, scripts and other API users are not the CLI and
    are never turned away here. ``/version`` is outside the API, so an old client can
    still learn which server it talks to.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        min_client_version()  # a bad setting stops the server at start, not per request

    def __call__(self, request):
        if request.path.startswith("/api/"):
            client = self._client_version(request)
            if client is not None:
                minimum, floor = min_client_version()
                key = parse_version(client)
                if key is None or key < floor:
                    return JsonResponse(
                        {"detail": upgrade_message(client, minimum), "code": "client_too_old",
                         "min_client_version": minimum},
                        status=426)
        return self.get_response(request)

    @staticmethod
    def _client_version(request) -> str | None:
        sent = request.headers.get(CLIENT_VERSION_HEADER)
        if sent is not None:
            return sent.strip()[:40]  # echoed in the message: keep it short
        if request.headers.get("User-Agent", "").strip() == LEGACY_USER_AGENT[0]:
            return LEGACY_USER_AGENT[1]
        return None


@never_cache
@require_GET
def version(request):
    """``GET /version``: public, no database, nothing but the version."""
    return JsonResponse({"version": __version__})
