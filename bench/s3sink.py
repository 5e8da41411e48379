"""A small S3-compatible endpoint for benchmarks only: fast enough not to be the bottleneck.

moto is the S3 of the correctness tests; as a benchmark endpoint it measures itself (it
burns 7-13 CPU-s per GiB on the cores the client needs, and loads a whole object per
ranged GET). This sink speaks just enough S3 for `dds data put/get` (through the DDS
server's boto3) and for boto3's ``upload_file`` / ``download_file``:

* buckets: create, head, list objects (v2), list multipart uploads, delete objects;
* ListBuckets; PutObject, CreateMultipartUpload, UploadPart, ListParts, CompleteMultipartUpload,
  AbortMultipartUpload, HeadObject, GetObject with ``Range``, DeleteObject.

No authentication (signatures are not checked). Bodies are received with ``recv_into``
into one reused buffer and discarded, unless the sink was started with ``--store`` (or
``PUT /_sink/store/on|off`` switched it at run time): then they are kept in memory (a
completed multipart object is its list of parts, never concatenated) and served from
memory; GETs of discarded bodies answer zeros of the right length. ETags are random
tokens, not MD5s (nothing here hashes). An ``x-amz-checksum-crc32`` header (DDS's part
checksums) is taken on UploadPart and PutObject without being verified (that would cost
the CPU this sink exists to save), echoed, kept, reported in ListParts, and the complete
answers S3's composite checksum (the CRC32 of the parts' CRC32s, ``-<parts>``).
``aws-chunked`` bodies (boto3's trailing
checksums) are stored decoded. ``Expect: 100-continue`` is answered before the body is
read; every answer goes out in one ``sendmsg`` (headers and body together). One thread
per connection, keep-alive.

    python bench/s3sink.py --port 9000 [--store]
"""

from __future__ import annotations

import argparse
import base64
import re
import secrets
import socket
import socketserver
import sys
import threading
import time
import zlib
from urllib.parse import parse_qs, unquote, urlsplit

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
DISCARD = 1 << 20
ZEROS = memoryview(bytes(DISCARD))
_lock = threading.Lock()
#: bucket -> key -> (list of body buffers, size, etag)
objects: dict[str, dict[str, tuple[list, int, str]]] = {}
#: upload id -> (bucket, key, {part: (buffer | None, size, etag)})
uploads: dict[str, tuple[str, str, dict[int, tuple]]] = {}
STORE = False


def _xml(body: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode()


def _error(code: str, status: int = 404) -> tuple[int, dict, list]:
    body = _xml(f"<Error><Code>{code}</Code><Message>{code}</Message></Error>")
    return status, {"Content-Type": "application/xml"}, [body]


def _b64(crc: int) -> str:
    return base64.b64encode(crc.to_bytes(4, "big")).decode()


def _crc32_echo(hdr: dict) -> dict:
    """S3 answers an upload that carried a checksum with the checksum it took."""
    value = hdr.get("x-amz-checksum-crc32")
    return {"x-amz-checksum-crc32": value} if value else {}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


REASONS = {200: "OK", 204: "No Content", 206: "Partial Content", 400: "Bad Request",
           404: "Not Found", 409: "Conflict", 416: "Range Not Satisfiable",
           501: "Not Implemented"}


class Handler(socketserver.BaseRequestHandler):
    def setup(self) -> None:
        self.sock: socket.socket = self.request
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = bytearray()
        self.scratch = bytearray(DISCARD)

    # ---------------------------------------------------------------- wire

    def _read_head(self) -> bytes | None:
        while True:
            i = self.pending.find(b"\r\n\r\n")
            if i >= 0:
                head = bytes(self.pending[:i])
                del self.pending[: i + 4]
                return head
            data = self.sock.recv(65536)
            if not data:
                return None
            self.pending += data

    def _recv_exact(self, n: int, keep: bool) -> bytearray | None:
        """``n`` body bytes: into a fresh buffer when kept, else into the scratch buffer."""
        out = bytearray(n) if keep else None
        mv = memoryview(out) if keep else None
        got = min(n, len(self.pending))
        if got:
            if keep:
                mv[:got] = self.pending[:got]
            del self.pending[:got]
        scratch = memoryview(self.scratch)
        while got < n:
            if keep:
                r = self.sock.recv_into(mv[got:], n - got)
            else:
                r = self.sock.recv_into(scratch, min(n - got, DISCARD))
            if not r:
                raise ConnectionError("client went away inside a body")
            got += r
        return out

    def _read_line(self) -> bytes:
        while True:
            i = self.pending.find(b"\r\n")
            if i >= 0:
                line = bytes(self.pending[:i])
                del self.pending[: i + 2]
                return line
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("client went away")
            self.pending += data

    def _read_chunked(self, keep: bool) -> tuple[list, int]:
        """A chunked (or aws-chunked) body, decoded; trailers are read and ignored."""
        parts, total = [], 0
        while True:
            line = self._read_line()
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self._read_line():  # trailers up to the empty line
                    pass
                return parts, total
            data = self._recv_exact(size, keep)
            if keep:
                parts.append(data)
            total += size
            self._read_line()

    def _send(self, status: int, headers: dict, body: list, head_only: bool = False) -> None:
        length = sum(len(b) for b in body)
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'OK')}",
                 f"Content-Length: {headers.pop('Content-Length', length)}",
                 "x-amz-request-id: sink", "Server: s3sink"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        bufs = [head] + ([] if head_only else [memoryview(b) for b in body])
        # One write for headers and body (a second small write would wait for the
        # client's delayed ACK); sendmsg may write less: continue from there.
        while bufs:
            sent = self.sock.sendmsg(bufs[:512])
            while sent:
                if sent >= len(bufs[0]):
                    sent -= len(bufs[0])
                    bufs.pop(0)
                else:
                    bufs[0] = memoryview(bufs[0])[sent:]
                    sent = 0

    def handle(self) -> None:
        try:
            while True:
                head = self._read_head()
                if head is None:
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                hdr = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    hdr[k.strip().lower()] = v.strip()
                if hdr.get("expect", "").lower() == "100-continue":
                    self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                status, headers, body = self.route(method, target, hdr)
                self._send(status, headers, body, head_only=method == "HEAD")
        except (ConnectionError, OSError):
            return

    # ---------------------------------------------------------------- body

    def _body(self, hdr: dict, keep: bool) -> tuple[list, int]:
        encoded = "aws-chunked" in hdr.get("content-encoding", "") or \
            hdr.get("x-amz-content-sha256", "").startswith("STREAMING-")
        if hdr.get("transfer-encoding", "").lower() == "chunked":
            return self._read_chunked(keep)
        n = int(hdr.get("content-length", "0") or 0)
        if encoded:
            return self._read_chunked(keep)  # aws-chunked framing inside Content-Length
        data = self._recv_exact(n, keep) if n else (bytearray() if keep else None)
        return ([data] if keep else []), n

    # ---------------------------------------------------------------- S3

    def route(self, method: str, target: str, hdr: dict):
        url = urlsplit(target)
        q = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        path = unquote(url.path).lstrip("/")
        bucket, _, key = path.partition("/")
        if bucket == "_sink":  # the benchmark's switch: PUT /_sink/store/on|off
            global STORE
            self._body(hdr, False)
            STORE = key == "store/on"
            return 200, {}, []
        if not bucket and method == "GET":
            with _lock:
                names = "".join(f"<Bucket><Name>{b}</Name><CreationDate>{_now()}"
                                f"</CreationDate></Bucket>" for b in objects)
            return 200, {"Content-Type": "application/xml"}, [_xml(
                f"<ListAllMyBucketsResult {NS}><Owner><ID>sink</ID></Owner><Buckets>{names}"
                f"</Buckets></ListAllMyBucketsResult>")]
        if not key:
            return self.bucket_op(method, bucket, q, hdr)
        if method == "PUT":
            if "uploadId" in q:
                return self.upload_part(q["uploadId"], int(q["partNumber"]), hdr)
            keep = STORE
            data, size = self._body(hdr, keep)
            etag = '"' + secrets.token_hex(16) + '"'
            with _lock:
                objects.setdefault(bucket, {})[key] = (data if keep else None, size, etag)
            return 200, {"ETag": etag, **_crc32_echo(hdr)}, []
        if method == "POST" and "uploads" in q:
            self._body(hdr, False)
            uid = secrets.token_hex(16)
            with _lock:
                uploads[uid] = (bucket, key, {})
            return 200, {"Content-Type": "application/xml"}, [_xml(
                f"<InitiateMultipartUploadResult {NS}><Bucket>{bucket}</Bucket>"
                f"<Key>{key}</Key><UploadId>{uid}</UploadId></InitiateMultipartUploadResult>")]
        if method == "POST" and "uploadId" in q:
            self._body(hdr, False)  # the part list: the sink trusts the client's order
            with _lock:
                up = uploads.pop(q["uploadId"], None)
                if up is None:
                    return _error("NoSuchUpload")
                parts = [up[2][n] for n in sorted(up[2])]
                data = (None if any(p[0] is None for p in parts)
                        else [b for p in parts for b in p[0]])
                size = sum(p[1] for p in parts)
                etag = '"' + secrets.token_hex(16) + f'-{len(parts)}"'
                objects.setdefault(bucket, {})[key] = (data, size, etag)
            checksum = ""
            if parts and all(p[3] for p in parts):
                composite = zlib.crc32(b"".join(base64.b64decode(p[3]) for p in parts))
                checksum = (f"<ChecksumCRC32>{_b64(composite)}-{len(parts)}</ChecksumCRC32>"
                            "<ChecksumType>COMPOSITE</ChecksumType>")
            return 200, {"Content-Type": "application/xml"}, [_xml(
                f"<CompleteMultipartUploadResult {NS}><Bucket>{bucket}</Bucket>"
                f"<Key>{key}</Key><ETag>{etag}</ETag>{checksum}"
                "</CompleteMultipartUploadResult>")]
        if method == "GET" and "uploadId" in q:
            with _lock:
                up = uploads.get(q["uploadId"])
                parts = sorted(up[2].items()) if up else None
            if parts is None:
                return _error("NoSuchUpload")
            items = "".join(f"<Part><PartNumber>{n}</PartNumber><LastModified>{_now()}"
                            f"</LastModified><ETag>{p[2]}</ETag><Size>{p[1]}</Size>"
                            + (f"<ChecksumCRC32>{p[3]}</ChecksumCRC32>" if p[3] else "")
                            + "</Part>" for n, p in parts)
            return 200, {"Content-Type": "application/xml"}, [_xml(
                f"<ListPartsResult {NS}><Bucket>{bucket}</Bucket><Key>{key}</Key>"
                f"<UploadId>{q['uploadId']}</UploadId><IsTruncated>false</IsTruncated>"
                f"<MaxParts>10000</MaxParts>{items}</ListPartsResult>")]
        if method == "DELETE":
            with _lock:
                if "uploadId" in q:
                    if uploads.pop(q["uploadId"], None) is None:
                        return _error("NoSuchUpload")
                else:
                    objects.get(bucket, {}).pop(key, None)
            return 204, {}, []
        if method in ("GET", "HEAD"):
            with _lock:
                obj = objects.get(bucket, {}).get(key)
            if obj is None:
                return _error("NoSuchKey")
            return self.get_object(obj, hdr, method)
        return _error("NotImplemented", 501)

    def upload_part(self, uid: str, number: int, hdr: dict):
        keep = STORE
        data, size = self._body(hdr, keep)
        etag = '"' + secrets.token_hex(16) + '"'
        with _lock:
            up = uploads.get(uid)
            if up is None:
                return _error("NoSuchUpload")
            up[2][number] = (data if keep else None, size, etag,
                             hdr.get("x-amz-checksum-crc32"))
        return 200, {"ETag": etag, **_crc32_echo(hdr)}, []

    def get_object(self, obj, hdr: dict, method: str):
        data, size, etag = obj
        headers = {"ETag": etag, "Content-Type": "application/octet-stream",
                   "Last-Modified": "Tue, 01 Dec 2026 00:00:00 GMT", "Accept-Ranges": "bytes"}
        start, end, status = 0, size - 1, 200
        m = re.match(r"bytes=(\d*)-(\d*)$", hdr.get("range", ""))
        if m and size:
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:
                start = max(0, size - int(m.group(2)))
            if start >= size:
                headers["Content-Range"] = f"bytes */{size}"
                return 416, headers, []
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        if method == "HEAD":
            headers["Content-Length"] = str(end - start + 1 if size else 0)
            return status, headers, []
        if data is None:  # the body was discarded: zeros of the right length
            n = end - start + 1 if size else 0
            return status, headers, [ZEROS[: min(DISCARD, n - i)] for i in range(0, n, DISCARD)]
        return status, headers, _slice(data, start, end + 1)

    def bucket_op(self, method: str, bucket: str, q: dict, hdr: dict):
        parts, _ = self._body(hdr, True)
        body = b"".join(parts).decode(errors="replace")
        with _lock:
            if method == "PUT":
                objects.setdefault(bucket, {})
                return 200, {"Location": "/" + bucket}, []
            if bucket not in objects:
                return _error("NoSuchBucket")
            if method == "HEAD":
                return 200, {}, []
            if method == "POST" and "delete" in q:
                for k in re.findall(r"<Key>(.*?)</Key>", body):
                    objects[bucket].pop(k.replace("&amp;", "&"), None)
                return 200, {"Content-Type": "application/xml"}, [_xml(
                    f"<DeleteResult {NS}></DeleteResult>")]
            if method == "GET" and "uploads" in q:
                items = "".join(f"<Upload><Key>{k}</Key><UploadId>{u}</UploadId></Upload>"
                                for u, (b, k, _) in uploads.items() if b == bucket)
                return 200, {"Content-Type": "application/xml"}, [_xml(
                    f"<ListMultipartUploadsResult {NS}><Bucket>{bucket}</Bucket>"
                    f"<IsTruncated>false</IsTruncated>{items}</ListMultipartUploadsResult>")]
            if method == "GET":
                keys = list(objects[bucket])[: int(q.get("max-keys", 1000))]
                items = "".join(f"<Contents><Key>{k}</Key><Size>{objects[bucket][k][1]}"
                                f"</Size></Contents>" for k in keys)
                return 200, {"Content-Type": "application/xml"}, [_xml(
                    f"<ListBucketResult {NS}><Name>{bucket}</Name><KeyCount>{len(keys)}"
                    f"</KeyCount><IsTruncated>false</IsTruncated>{items}</ListBucketResult>")]
            if method == "DELETE":
                objects.pop(bucket, None)
                return 204, {}, []
        return _error("NotImplemented", 501)


def _slice(bufs: list, start: int, stop: int) -> list:
    """Views of ``bufs`` (a stored object's parts) covering ``[start, stop)``; no copy."""
    out, pos = [], 0
    for b in bufs:
        n = len(b)
        if pos + n > start and pos < stop:
            out.append(memoryview(b)[max(0, start - pos): min(n, stop - pos)])
        pos += n
        if pos >= stop:
            break
    return out


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def main() -> None:
    global STORE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9000)
    ap.add_argument("--store", action="store_true", help="keep bodies in memory (for GET)")
    args = ap.parse_args()
    STORE = args.store
    with Server((args.host, args.port), Handler) as srv:
        print(f"s3sink on http://{args.host}:{args.port} store={STORE}", flush=True)
        try:
            srv.serve_forever()
        except KeyboardInterrupt:
            sys.exit(0)


if __name__ == "__main__":
    main()
