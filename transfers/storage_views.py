"""The local backend's object endpoint: signed, expiring URLs instead of credentials.

Not part of the JSON API (mounted at /storage/ by ddsite/urls.py): the token in the URL is
the whole authorisation, exactly like an S3 presigned URL, so these views take no session
or JWT and are exempt from CSRF. A token names one operation on one object and expires.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from django.core import signing
from django.http import HttpResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from core.errors import DDSError
from transfers.selectors import upload_takes_object
from transfers.services.uploads import single_put_publish
from transfers.storage import LocalBackend

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _open(token: str, op: str, want: set[str]) -> dict | HttpResponse:
    try:
        # Upper bound first; each token carries its own lifetime ("e") checked below.
        payload = LocalBackend.unsign(token, max_age=7 * 24 * 3600)
    except signing.SignatureExpired:
        return HttpResponse("URL expired.", status=403, content_type="text/plain")
    except signing.BadSignature:
        return HttpResponse("Invalid URL signature.", status=403, content_type="text/plain")
    try:
        LocalBackend.unsign(token, max_age=int(payload.get("e", 0)))
    except signing.SignatureExpired:
        return HttpResponse("URL expired.", status=403, content_type="text/plain")
    # The operation is named in the signed payload: a part-upload URL is not a download URL.
    if payload.get("op") != op or not want <= payload.keys():
        return HttpResponse("URL not valid for this operation.", status=403,
                            content_type="text/plain")
    return payload


def _signed_crc32(request, payload: dict) -> HttpResponse | None:
    """A URL that signs a CRC32 wants it sent as S3 does (``x-amz-checksum-crc32``, the
    same value): another value or none is refused before any byte is read (S3 answers
    403 SignatureDoesNotMatch for a signed header that differs)."""
    crc32 = payload.get("c")
    if crc32 is not None and request.headers.get("x-amz-checksum-crc32") != crc32:
        return HttpResponse("This URL signs x-amz-checksum-crc32: send that header with "
                            "the value it was signed for.", status=403,
                            content_type="text/plain")
    return None


def _bad_digest(exc: DDSError) -> HttpResponse | None:
    """The body did not have the CRC32 signed into the URL: 400 BadDigest, as S3."""
    if exc.details.get("storage_code") != "BadDigest":
        return None
    return HttpResponse(f"BadDigest: {exc.message}", status=400, content_type="text/plain")


class PartTooLarge(Exception):
    """The body is longer than the upload's part size signed into the URL."""


def _chunks(request, size: int = 1024 * 1024, limit: int | None = None) -> Iterator[bytes]:
    seen = 0
    while True:
        data = request.read(size)
        if not data:
            return
        seen += len(data)
        if limit is not None and seen > limit:
            raise PartTooLarge
        yield data


@csrf_exempt
@require_http_methods(["PUT"])
def storage_part(request, token: str):
    payload = _open(token, "put", {"b", "k", "u", "n"})
    if isinstance(payload, HttpResponse):
        return payload
    if (refused := _signed_crc32(request, payload)) is not None:
        return refused
    limit = payload.get("m")
    declared = request.META.get("CONTENT_LENGTH") or ""
    if not declared.isdigit():
        # As S3 (MissingContentLength): the WSGI server would hand an undeclared body over
        # as empty, and the part would be stored empty.
        return HttpResponse("A part upload needs a Content-Length.", status=411,
                            content_type="text/plain")
    if limit is not None and int(declared) > limit:
        return HttpResponse(f"A part of this upload is at most {limit} bytes.", status=413,
                            content_type="text/plain")
    try:
        # The signed part size places the part in the upload's data file.
        etag = LocalBackend().write_part(payload["b"], payload["u"], payload["n"],
                                         _chunks(request, limit=limit), part_size=limit,
                                         crc32=payload.get("c"))
    except PartTooLarge:
        return HttpResponse(f"A part of this upload is at most {limit} bytes.", status=413,
                            content_type="text/plain")
    except DDSError as exc:
        if (digest := _bad_digest(exc)) is not None:
            return digest
        # This endpoint speaks the object store's protocol to the client's plain HTTP
        # PUT (as S3 would: a text body, 404 for an upload that is gone), not the API's
        # JSON, so it answers the backend's errors itself.
        return HttpResponse(exc.message, status=404 if exc.status_code == 400 else
                            exc.status_code, content_type="text/plain")
    response = HttpResponse(status=200)
    response["ETag"] = f'"{etag}"'
    return response


@csrf_exempt
@require_http_methods(["PUT"])
def storage_put(request, token: str):
    """One PUT that creates the whole object (S3's PutObject): the body must be exactly
    the size signed into the URL (400 otherwise, and nothing is written)."""
    payload = _open(token, "putobj", {"b", "k", "s"})
    if isinstance(payload, HttpResponse):
        return payload
    if (refused := _signed_crc32(request, payload)) is not None:
        return refused
    size = int(payload["s"])
    declared = request.META.get("CONTENT_LENGTH") or ""
    if not declared.isdigit():
        return HttpResponse("An object upload needs a Content-Length.", status=411,
                            content_type="text/plain")
    if int(declared) != size:
        return HttpResponse(f"This URL takes exactly {size} bytes, not {declared}.",
                            status=400, content_type="text/plain")
    if not upload_takes_object(object_key=payload["k"]):
        return HttpResponse("This upload is finished or was aborted: its URL writes "
                            "nothing any more.", status=409, content_type="text/plain")
    try:
        etag = LocalBackend().write_object(
            payload["b"], payload["k"], size, _chunks(request, limit=size),
            crc32=payload.get("c"),
            publish=lambda rename: single_put_publish(object_key=payload["k"], rename=rename))
    except PartTooLarge:
        return HttpResponse(f"This URL takes exactly {size} bytes.", status=400,
                            content_type="text/plain")
    except DDSError as exc:
        if (digest := _bad_digest(exc)) is not None:
            return digest
        status = exc.status_code
        if exc.details.get("storage_code") == "NoSuchBucket":
            status = 404
        elif exc.details.get("storage_code") == "OperationAborted":
            status = 409
        return HttpResponse(exc.message, status=status, content_type="text/plain")
    response = HttpResponse(status=200)
    response["ETag"] = f'"{etag}"'
    return response


@csrf_exempt
@require_http_methods(["GET", "HEAD"])
def storage_object(request, token: str):
    payload = _open(token, "get", {"b", "k"})
    if isinstance(payload, HttpResponse):
        return payload
    backend = LocalBackend()
    size = backend.head_size(payload["b"], payload["k"])
    if size is None:
        return HttpResponse("No such object.", status=404, content_type="text/plain")
    start, end, status = 0, size - 1, 200
    header = request.headers.get("Range")
    if header:
        m = _RANGE.match(header.strip())
        if not m or (not m[1] and not m[2]):
            return _unsatisfiable(size)
        if m[1]:
            start = int(m[1])
            end = min(int(m[2]), size - 1) if m[2] else size - 1
        else:  # suffix range: the last N bytes
            start = max(size - int(m[2]), 0)
        if start > end or start >= size:
            return _unsatisfiable(size)
        status = 206
    body = (b"" if request.method == "HEAD" or size == 0
            else backend.iter_range(payload["b"], payload["k"], start, end))
    response = StreamingHttpResponse(body, status=status,
                                     content_type="application/octet-stream")
    response["Content-Length"] = str(end - start + 1 if size else 0)
    response["Accept-Ranges"] = "bytes"
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return response


def _unsatisfiable(size: int) -> HttpResponse:
    response = HttpResponse(status=416)
    response["Content-Range"] = f"bytes */{size}"
    return response
