"""The version of DDS: the package version in pyproject.toml, and nothing else.

The CLI (``dds --version`` and the header it sends), the server (``/version``, the
OpenAPI schema, the client check) and the image label all report this one value.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "dds"
#: Sent with every API request, so that the server can turn away a client too old for it.
CLIENT_VERSION_HEADER = "X-DDS-Client-Version"
UNKNOWN = "0+unknown"
_PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def package_version() -> str:
    """The installed package's version; from a source tree's pyproject.toml otherwise.

    The fallback covers ``python -m cli`` in a checkout that was never ``pip install``-ed
    and an image that copies the source without installing it: it reads the same file
    the package metadata is built from, so there is still one source.
    """
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pass
    try:
        with _PYPROJECT.open("rb") as fh:
            project = tomllib.load(fh).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return UNKNOWN
    version = project.get("version")
    return version if project.get("name") == DISTRIBUTION and version else UNKNOWN


__version__ = package_version()
