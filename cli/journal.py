"""The upload journal: what a killed or interrupted `dds data put` needs to resume.

One 0600 file per multi-part upload in progress, under the state directory
(``cli.config.journal_dir``). It holds the upload id and the file's Crypt4GH session key:
the parts already in storage were sealed with that key, so the rest must be too. The key
only protects a file whose plaintext sits on the same disk, so keeping it (0600, deleted on
completion) exposes nothing new; it is never sent anywhere. Which parts are stored is asked
from the server (storage is the truth).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from cli import config


class Journal:
    def __init__(self, url: str, project: str) -> None:
        scope = hashlib.sha256(f"{url}\n{project}".encode()).hexdigest()[:16]
        self.dir = config.journal_dir() / scope

    def _path(self, remote: str) -> Path:
        return self.dir / (hashlib.sha256(remote.encode()).hexdigest() + ".json")

    def load(self, remote: str) -> dict[str, Any] | None:
        raw = config.read_private(self._path(remote))
        if raw is None:
            return None
        try:
            entry = json.loads(raw)
        except ValueError:
            return None  # a torn write: the upload simply starts again
        return entry if isinstance(entry, dict) and entry.get("remote") == remote else None

    def save(self, remote: str, entry: dict[str, Any]) -> None:
        config.write_private(self._path(remote), json.dumps({**entry, "remote": remote}).encode())

    def drop(self, remote: str) -> None:
        self._path(remote).unlink(missing_ok=True)
        self._crc_path(remote).unlink(missing_ok=True)

    _append_lock = threading.Lock()

    def _crc_path(self, remote: str) -> Path:
        path = self._path(remote)
        return path.with_name(path.name + ".crc32")

    def part_crc32(self, remote: str, number: int, crc32: str) -> None:
        """Storage took part ``number`` with this CRC32 (the last line of a part wins)."""
        path = self._crc_path(remote)
        with self._append_lock:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, f"{int(number)} {crc32}\n".encode())
            finally:
                os.close(fd)

    def parts_crc32(self, remote: str) -> dict[int, str]:
        """The CRC32s recorded for the upload's parts (a torn last line is skipped)."""
        raw = config.read_private(self._crc_path(remote))
        out: dict[int, str] = {}
        for line in (raw or b"").decode(errors="replace").splitlines():
            number, _, crc32 = line.partition(" ")
            if number.isdigit() and len(crc32) == 8:
                out[int(number)] = crc32
        return out
