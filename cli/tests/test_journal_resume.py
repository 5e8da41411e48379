"""Which journaled upload `dds data put` goes on with: a compressed one only under the
same zstd (library version and settings), since its remaining parts must continue the
stream whose first parts are stored; an uncompressed one whatever the zstd."""

from __future__ import annotations

import os
from pathlib import Path

import zstandard

from cli.put import journal_resumable, zstd_tag


def _entry(path: Path, **over) -> dict:
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "zstd": zstd_tag(),
            "compressed": True, **over}


def test_same_file_same_zstd_resumes(tmp_path: Path) -> None:
    f = tmp_path / "reads.fastq"
    f.write_bytes(b"@r1\nACGT\n+\nIIII\n" * 100)
    assert journal_resumable(_entry(f), os.stat(f))


def test_a_compressed_upload_of_other_zstd_settings_starts_again(tmp_path: Path) -> None:
    f = tmp_path / "reads.fastq"
    f.write_bytes(b"@r1\nACGT\n+\nIIII\n" * 100)
    # a journal of an earlier dds: only zstandard's version, its level-3 stream
    assert not journal_resumable(_entry(f, zstd=zstandard.__version__), os.stat(f))
    assert not journal_resumable(_entry(f, zstd=None), os.stat(f))


def test_an_uncompressed_upload_resumes_whatever_the_zstd(tmp_path: Path) -> None:
    f = tmp_path / "random.bin"
    f.write_bytes(os.urandom(4096))
    assert journal_resumable(_entry(f, compressed=False, zstd="0.1.0"), os.stat(f))


def test_a_changed_file_starts_again(tmp_path: Path) -> None:
    f = tmp_path / "random.bin"
    f.write_bytes(os.urandom(4096))
    entry = _entry(f, compressed=False)
    f.write_bytes(os.urandom(4097))
    assert not journal_resumable(entry, os.stat(f))
