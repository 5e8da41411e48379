"""A small client of the upload protocol, as the CLI does it: encrypt locally, send the
segments straight to the presigned URLs with plain HTTP, complete with the header."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import httpx

import c4gh


@dataclass
class Encrypted:
    header: bytes
    body: bytes
    sha256: str
    size_original: int
    compressed: bool


def encrypt(data: bytes, public_key: bytes, *, compress: bool = False) -> Encrypted:
    whole, result = c4gh.encrypt_bytes(data, [bytes(public_key)], compress=compress)
    hlen = c4gh.header_length(whole)
    return Encrypted(whole[:hlen], whole[hlen:], hashlib.sha256(data).hexdigest(),
                     len(data), result.compressed)


def api_url(project, rest: str = "") -> str:
    return f"/api/v1/projects/{project.public_id}/{rest}"


def start(client, project, path, size, overwrite=False):
    return client.post(api_url(project, "uploads"),
                       {"path": path, "size_original": size, "overwrite": overwrite},
                       format="json")


def part_urls(client, project, upload_id, numbers):
    r = client.post(api_url(project, f"uploads/{upload_id}/part-urls"),
                    {"part_numbers": numbers}, format="json")
    assert r.status_code == 200, r.json()
    return {p["part_number"]: p["url"] for p in r.json()["parts"]}


def put_parts(client, project, upload, body: bytes, only=None) -> dict[int, str]:
    """PUT every part (or ``only`` those numbers) over HTTP; returns ETags by number."""
    size = upload["part_size"]
    chunks = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
    numbers = only or list(range(1, len(chunks) + 1))
    urls = part_urls(client, project, upload["upload_id"], numbers)
    return {n: put_part(urls[n], chunks[n - 1]) for n in numbers}


def complete_payload(enc: Encrypted, etags: dict[int, str], **over) -> dict:
    payload = {
        "parts": [{"part_number": n, "etag": e} for n, e in sorted(etags.items())],
        "header": base64.b64encode(enc.header).decode(), "checksum": enc.sha256,
        "size_original": enc.size_original, "size_stored": len(enc.body),
        "compressed": enc.compressed,
    }
    payload.update(over)
    return payload


def complete(client, project, upload_id, enc: Encrypted, etags: dict[int, str], **over):
    return client.post(api_url(project, f"uploads/{upload_id}/complete"),
                       complete_payload(enc, etags, **over), format="json")


def start_batch(client, project, items: list[dict], first_parts: int = 1):
    return client.post(api_url(project, "uploads/batch"),
                       {"uploads": items, "first_parts": first_parts}, format="json")


def complete_batch(client, project, items: list[dict]):
    """``items``: complete payloads, each with its ``upload_id``."""
    return client.post(api_url(project, "uploads/complete-batch"), {"uploads": items},
                       format="json")


def put_part(url: str, body: bytes) -> str:
    r = httpx.put(url, content=body, timeout=30)
    assert r.status_code == 200, r.text
    return r.headers["ETag"].strip('"')


def upload(client, project, path, data: bytes, overwrite=False) -> dict:
    enc = encrypt(data, project.public_key)
    r = start(client, project, path, len(data), overwrite)
    assert r.status_code == 201, r.json()
    up = r.json()
    etags = put_parts(client, project, up, enc.body)
    r = complete(client, project, up["upload_id"], enc, etags)
    assert r.status_code == 201, r.json()
    return r.json()
