"""Transfers API: uploads, the file catalogue and downloads of one project.

One small view per operation; every view first calls ``transfer_project_get`` (the one
status/role rule), then one service or selector. Domain errors are answered by the one
handler (core.errors.api_exception_handler); a batch reports each item's refusal in the
same shape (:func:`_item_error`). Binary values (Crypt4GH headers, X25519 keys) travel as
standard base64.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, TypeVar

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.sessions import request_kek
from core.client_ip import client_ip
from core.errors import DDSError
from transfers import selectors
from transfers.selectors import Op, transfer_project_get
from transfers.services.catalogue import files_remove, folder_remove
from transfers.services.completion import CompleteInput, upload_complete, uploads_complete
from transfers.services.downloads import (
    DOWNLOAD_BATCH_MAX,
    DownloadItem,
    files_download_prepare,
)
from transfers.services.headers import HEADER_MAX_BYTES, PUBLIC_KEY_BYTES
from transfers.services.uploads import (
    MAX_PARTS,
    PART_CHECKSUM_CRC32,
    PART_URL_BATCH_MAX,
    UPLOAD_BATCH_MAX,
    PartUrl,
    StartInput,
    part_url_ttl,
    upload_abort,
    upload_header_check,
    upload_max_parts,
    upload_part_urls,
    upload_parts_list,
    upload_start,
    uploads_first_part_urls,
    uploads_put_urls,
    uploads_start,
)


class Base64Field(serializers.CharField):
    """Bytes on the Python side, standard base64 on the wire."""

    def __init__(self, *, max_bytes: int, exact: int | None = None, **kwargs) -> None:
        self.max_bytes, self.exact = max_bytes, exact
        super().__init__(max_length=(max_bytes * 4) // 3 + 4, **kwargs)

    def to_internal_value(self, data):
        text = super().to_internal_value(data)
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise serializers.ValidationError("Not valid base64.")
        if self.exact is not None and len(raw) != self.exact:
            raise serializers.ValidationError(f"Must decode to exactly {self.exact} bytes.")
        if len(raw) > self.max_bytes:
            raise serializers.ValidationError(f"At most {self.max_bytes} bytes.")
        return raw

    def to_representation(self, value):
        return base64.b64encode(bytes(value)).decode()


class TransferView(APIView):
    """A view of one project's transfers: ``op`` is what the view does to it."""

    op: Op = Op.LIST

    def project(self, request, public_id: str):
        return transfer_project_get(user=request.user, public_id=public_id, op=self.op)

    @staticmethod
    def valid(serializer_class, data) -> dict:
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class ItemError(serializers.Serializer):
    """Why one item of a batch was refused: what the single-item endpoint answers."""

    status = serializers.IntegerField(help_text="The HTTP status the single endpoint gives.")
    code = serializers.CharField()
    detail = serializers.CharField()


def _item_error(exc: DDSError) -> dict:
    """A refused batch item: the body the single endpoint answers, and its status."""
    return {"status": exc.status_code, **exc.body()}


class FileOut(serializers.Serializer):
    path = serializers.CharField()
    name = serializers.CharField()
    size_original = serializers.IntegerField()
    size_stored = serializers.IntegerField()
    compressed = serializers.BooleanField()
    checksum = serializers.CharField()
    uploaded_at = serializers.DateTimeField()
    last_downloaded_at = serializers.DateTimeField(allow_null=True)
    lost = serializers.BooleanField(
        default=False, help_text="Storage reconciliation found its object missing: it "
                                 "cannot be downloaded until restored or uploaded again.")


class FolderOut(serializers.Serializer):
    path = serializers.CharField()
    name = serializers.CharField()
    file_count = serializers.IntegerField(help_text="Files under it, recursively.")
    size_original = serializers.IntegerField()
    size_stored = serializers.IntegerField()


class UploadOut(serializers.Serializer):
    upload_id = serializers.CharField(source="public_id")
    path = serializers.CharField()
    status = serializers.CharField()
    size_original = serializers.IntegerField()
    reserved_bytes = serializers.IntegerField()
    part_size = serializers.IntegerField(help_text="Bytes per part: whole 65 564-byte "
                                                   "segments; only the last part is shorter.")
    max_parts = serializers.SerializerMethodField()
    put_size = serializers.IntegerField(
        allow_null=True, help_text="A single-PUT upload: the exact bytes its URL takes "
                                   "(null: a multipart upload).")
    part_checksum = serializers.SerializerMethodField(
        help_text="'crc32': every part URL signs the part's CRC32 (ask for part URLs with "
                  "parts: [{part_number, crc32}], send x-amz-checksum-crc32, name each "
                  "part's crc32 in the complete); null: not checksummed.")
    overwrite = serializers.BooleanField()
    created_at = serializers.DateTimeField()

    def get_max_parts(self, obj) -> int:
        return upload_max_parts(obj)

    def get_part_checksum(self, obj) -> str | None:
        return obj.part_checksum or None


# --------------------------------------------------------------------------- uploads


class UploadPartUrlOut(serializers.Serializer):
    part_number = serializers.IntegerField()
    url = serializers.CharField(help_text="PUT the part's bytes here; short-lived.")


_WithUrl = TypeVar("_WithUrl", PartUrl, DownloadItem)


def _absolute(request, urls: list[_WithUrl]) -> list[_WithUrl]:
    """Local-backend URLs are paths on this server; S3 URLs are already absolute."""
    for item in urls:
        item["url"] = request.build_absolute_uri(item["url"])
    return urls


_PART_CHECKSUM_HELP = ("'crc32': the client sends each part's CRC32, storage verifies it "
                       "(if the server has part checksums on: see the upload's "
                       "part_checksum). Absent: no part checksums, as before.")


class UploadItemIn(serializers.Serializer):
    """What one upload's start says (the single start, and each item of a batch)."""

    path = serializers.CharField(max_length=4096, trim_whitespace=False)
    size_original = serializers.IntegerField(min_value=0)
    overwrite = serializers.BooleanField(default=False)


class UploadStartApi(TransferView):
    op = Op.UPLOAD

    class UploadStartIn(UploadItemIn):
        part_checksum = serializers.ChoiceField(
            choices=[PART_CHECKSUM_CRC32], required=False, allow_null=True,
            help_text=_PART_CHECKSUM_HELP)
        first_parts = serializers.IntegerField(
            default=0, min_value=0, max_value=PART_URL_BATCH_MAX,
            help_text="Presigned URLs of this many first parts come with the answer "
                      "(`parts`), saving the first part-urls request; none for a "
                      "checksummed upload (its URLs need the parts' CRC32s).")

    class UploadStartOut(UploadOut):
        parts = UploadPartUrlOut(many=True, required=False,
                                 help_text="With first_parts: the first parts' URLs.")

    @extend_schema(request=UploadStartIn, responses={201: UploadStartOut},
                   summary="Start an upload: reserve quota, open a multipart upload")
    def post(self, request, project_id: str):
        project = self.project(request, project_id)
        data = self.valid(self.UploadStartIn, request.data)
        first = data.pop("first_parts")
        upload = upload_start(project=project, by=request.user, ip=client_ip(request),
                              **data)
        out = UploadOut(upload).data
        if first:  # (older clients get the answer they know)
            [urls] = uploads_first_part_urls(project=project, uploads=[upload], count=first)
            out["parts"] = _absolute(request, urls)
        return Response(out, status=status.HTTP_201_CREATED)


class UploadsStartBatchApi(TransferView):
    op = Op.UPLOAD

    class UploadsStartBatchIn(serializers.Serializer):
        class UploadsStartBatchInItem(UploadItemIn):
            size_stored = serializers.IntegerField(
                min_value=0, required=False, allow_null=True, default=None,
                help_text="With single_put: the exact bytes the client will PUT.")
            crc32 = serializers.CharField(
                max_length=16, required=False, allow_null=True, default=None,
                help_text="With single_put and part_checksum: the CRC32 of those bytes "
                          "(base64 of 4 big-endian bytes), signed into the PUT URL.")

        uploads: serializers.ListSerializer[Any] = serializers.ListSerializer(
            child=UploadsStartBatchInItem(), allow_empty=False, max_length=UPLOAD_BATCH_MAX)
        first_parts = serializers.IntegerField(
            default=1, min_value=0, max_value=PART_URL_BATCH_MAX,
            help_text="Presigned URLs of this many first parts come with each upload.")
        single_put = serializers.BooleanField(
            default=False, help_text="The client can PUT a file that fits in one part in "
                                     "one request: such items (with size_stored) get `put`.")
        part_checksum = serializers.ChoiceField(
            choices=[PART_CHECKSUM_CRC32], required=False, allow_null=True,
            help_text=_PART_CHECKSUM_HELP + " A checksummed item gets `put` only with its "
                      "crc32, and no first part URLs.")

    class UploadsStartBatchOut(serializers.Serializer):
        class UploadsStartBatchItem(serializers.Serializer):
            class UploadPutOut(serializers.Serializer):
                url = serializers.CharField(help_text="PUT exactly `size` bytes here.")
                size = serializers.IntegerField()

            path = serializers.CharField(help_text="As sent.")
            upload = UploadOut(allow_null=True)
            parts = UploadPartUrlOut(many=True)
            put = UploadPutOut(allow_null=True, required=False,
                               help_text="A single-PUT upload's URL (then no parts).")
            error = ItemError(allow_null=True)

        uploads = UploadsStartBatchItem(many=True, help_text="In the order sent.")
        expires_in = serializers.IntegerField()

    @extend_schema(request=UploadsStartBatchIn, responses={200: UploadsStartBatchOut},
                   summary="Start up to 200 uploads, with the URLs of their first parts; "
                           "each item succeeds or fails on its own")
    def post(self, request, project_id: str):
        project = self.project(request, project_id)
        data = self.valid(self.UploadsStartBatchIn, request.data)
        single_put = data["single_put"]
        items = [StartInput(item["path"], item["size_original"], item["overwrite"],
                            item.get("size_stored") if single_put else None,
                            item.get("crc32") if single_put else None)
                 for item in data["uploads"]]
        results = uploads_start(
            project=project, by=request.user, ip=client_ip(request), single_put=single_put,
            part_checksum=data.get("part_checksum"), items=items)
        started = [r for r in results if not isinstance(r, DDSError)]
        urls = dict(zip((u.pk for u in started), uploads_first_part_urls(
            project=project, uploads=started, count=data["first_parts"]), strict=True))
        puts = dict(zip((u.pk for u in started), uploads_put_urls(
            project=project, uploads=started,
            crc32s=[i.crc32 for i, r in zip(items, results, strict=True)
                    if not isinstance(r, DDSError)]), strict=True))
        out = []
        for item, result in zip(data["uploads"], results, strict=True):
            if isinstance(result, DDSError):
                out.append({"path": item["path"], "upload": None, "parts": [],
                            "error": _item_error(result)})
            else:
                one = {"path": item["path"], "upload": UploadOut(result).data,
                       "parts": _absolute(request, urls[result.pk]), "error": None}
                put = puts[result.pk]
                if single_put:  # (older clients get the answer they know)
                    one["put"] = None if put is None else {
                        "url": request.build_absolute_uri(put), "size": result.put_size}
                out.append(one)
        return Response({"uploads": out, "expires_in": part_url_ttl()})


class PartOut(serializers.Serializer):
    part_number = serializers.IntegerField()
    etag = serializers.CharField()
    size = serializers.IntegerField()
    crc32 = serializers.CharField(
        allow_null=True, help_text="The CRC32 storage verified for the part (null: sent "
                                   "without one, or the store does not report it).")


class UploadPartsApi(TransferView):
    op = Op.UPLOAD

    @extend_schema(responses={200: inline_serializer("UploadPartsListOut", {
        "upload": UploadOut(), "parts": PartOut(many=True)})},
        summary="Resume: the upload and the parts storage already holds")
    def get(self, request, project_id: str, upload_id: str):
        project = self.project(request, project_id)
        upload = selectors.upload_get(project=project, user=request.user, public_id=upload_id)
        parts = upload_parts_list(upload=upload)
        return Response({"upload": UploadOut(upload).data,
                         "parts": [{"part_number": p.number, "etag": p.etag, "size": p.size,
                                    "crc32": p.crc32} for p in parts]})


class UploadPartUrlsApi(TransferView):
    op = Op.UPLOAD

    class UploadPartUrlsIn(serializers.Serializer):
        class UploadPartUrlsPartIn(serializers.Serializer):
            part_number = serializers.IntegerField(min_value=1, max_value=MAX_PARTS)
            crc32 = serializers.CharField(
                max_length=16, help_text="The part's CRC32: base64 of its 4 big-endian "
                                         "bytes (S3's x-amz-checksum-crc32).")

        part_numbers = serializers.ListField(
            child=serializers.IntegerField(min_value=1, max_value=MAX_PARTS),
            min_length=1, max_length=PART_URL_BATCH_MAX, required=False,
            help_text="Uploads without part checksums.")
        parts: serializers.ListSerializer[Any] = serializers.ListSerializer(
            child=UploadPartUrlsPartIn(), allow_empty=False, max_length=PART_URL_BATCH_MAX,
            required=False, help_text="Checksummed uploads (part_checksum 'crc32'): each "
                                      "part with its CRC32, signed into its URL.")

        def validate(self, attrs):
            if ("part_numbers" in attrs) == ("parts" in attrs):
                raise serializers.ValidationError("Give part_numbers or parts (with their "
                                                  "crc32), not both.")
            return attrs

    @extend_schema(request=UploadPartUrlsIn, responses={200: inline_serializer(
        "UploadPartUrlsResponse", {"parts": UploadPartUrlOut(many=True),
                              "expires_in": serializers.IntegerField()})},
        summary="Presigned part URLs, in batches of up to 100")
    def post(self, request, project_id: str, upload_id: str):
        project = self.project(request, project_id)
        upload = selectors.upload_get(project=project, user=request.user, public_id=upload_id)
        data = self.valid(self.UploadPartUrlsIn, request.data)
        if "parts" in data:
            crc32s = {p["part_number"]: p["crc32"] for p in data["parts"]}
            urls = upload_part_urls(upload=upload, part_numbers=list(crc32s), crc32s=crc32s)
        else:
            urls = upload_part_urls(upload=upload, part_numbers=data["part_numbers"])
        return Response({"parts": _absolute(request, urls),
                         "expires_in": part_url_ttl()})


class UploadCompleteApi(TransferView):
    op = Op.UPLOAD

    class UploadCompleteIn(serializers.Serializer):
        class UploadCompletePartIn(serializers.Serializer):
            part_number = serializers.IntegerField(min_value=1, max_value=MAX_PARTS)
            etag = serializers.CharField(max_length=200)
            crc32 = serializers.CharField(
                max_length=16, required=False, help_text="Checksummed uploads: the part's "
                                                         "CRC32 (every part).")

        parts: serializers.ListSerializer[Any] = serializers.ListSerializer(
            child=UploadCompletePartIn(), allow_empty=False, max_length=MAX_PARTS)
        header = Base64Field(max_bytes=HEADER_MAX_BYTES)
        checksum = serializers.RegexField(r"^[0-9a-fA-F]{64}$",
                                          help_text="SHA-256 of the original, hex.")
        size_original = serializers.IntegerField(min_value=0)
        size_stored = serializers.IntegerField(min_value=0)
        compressed = serializers.BooleanField()

    @extend_schema(request=UploadCompleteIn, responses={201: FileOut},
                   summary="Complete an upload: validate, assemble, record the file")
    def post(self, request, project_id: str, upload_id: str):
        project = self.project(request, project_id)
        upload = selectors.upload_get(project=project, user=request.user, public_id=upload_id)
        data = self.valid(self.UploadCompleteIn, request.data)
        f = upload_complete(upload=upload, by=request.user, ip=client_ip(request),
                                       kek=request_kek(request), data=_complete_input(data))
        return Response(FileOut(f).data, status=status.HTTP_201_CREATED)


def _complete_input(v: dict) -> CompleteInput:
    return CompleteInput(
        parts=[(p["part_number"], p["etag"]) for p in v["parts"]], header=v["header"],
        checksum=v["checksum"].lower(), size_original=v["size_original"],
        size_stored=v["size_stored"], compressed=v["compressed"],
        crc32s={p["part_number"]: p["crc32"] for p in v["parts"] if "crc32" in p})


class UploadsCompleteBatchApi(TransferView):
    op = Op.UPLOAD

    class UploadsCompleteBatchIn(serializers.Serializer):
        class UploadsCompleteBatchInItem(UploadCompleteApi.UploadCompleteIn):
            upload_id = serializers.CharField(max_length=64)

        uploads: serializers.ListSerializer[Any] = serializers.ListSerializer(
            child=UploadsCompleteBatchInItem(),
                                             allow_empty=False, max_length=UPLOAD_BATCH_MAX)

    class UploadsCompleteBatchOut(serializers.Serializer):
        class UploadsCompleteBatchOutItem(serializers.Serializer):
            upload_id = serializers.CharField()
            file = FileOut(allow_null=True)
            error = ItemError(allow_null=True)

        uploads = UploadsCompleteBatchOutItem(many=True, help_text="In the order sent.")

    @extend_schema(request=UploadsCompleteBatchIn, responses={200: UploadsCompleteBatchOut},
                   summary="Complete up to 200 uploads; each item succeeds or fails on its "
                           "own, with the refusals of the single complete")
    def post(self, request, project_id: str):
        project = self.project(request, project_id)
        data = self.valid(self.UploadsCompleteBatchIn, request.data)
        results = uploads_complete(
            project=project, by=request.user, kek=request_kek(request), ip=client_ip(request),
            items=[(v["upload_id"], _complete_input(v)) for v in data["uploads"]])
        out = []
        for v, result in zip(data["uploads"], results, strict=True):
            if isinstance(result, DDSError):
                out.append({"upload_id": v["upload_id"], "file": None,
                            "error": _item_error(result)})
            else:
                out.append({"upload_id": v["upload_id"], "file": FileOut(result).data,
                            "error": None})
        return Response({"uploads": out})


class UploadAbortApi(TransferView):
    op = Op.UPLOAD

    @extend_schema(request=None, responses={200: UploadOut}, summary="Abort an upload")
    def delete(self, request, project_id: str, upload_id: str):
        project = self.project(request, project_id)
        upload = selectors.upload_get(project=project, user=request.user, public_id=upload_id)
        upload = upload_abort(upload=upload, by=request.user, ip=client_ip(request))
        return Response(UploadOut(upload).data)


# --------------------------------------------------------------------------- catalogue


class FilesListApi(TransferView):
    op = Op.LIST

    class FilesListIn(serializers.Serializer):
        folder = serializers.CharField(required=False, default="", allow_blank=True,
                                       trim_whitespace=False)
        offset = serializers.IntegerField(required=False, default=0, min_value=0)
        limit = serializers.IntegerField(required=False, default=100, min_value=1,
                                         max_value=1000)

    class FilesListOut(serializers.Serializer):
        folder = FolderOut()
        folders = FolderOut(many=True)
        files = FileOut(many=True)
        total_folders = serializers.IntegerField()
        total_files = serializers.IntegerField(help_text="Files directly in this folder.")
        offset = serializers.IntegerField()
        limit = serializers.IntegerField()
        next_offset = serializers.IntegerField(allow_null=True)

    @extend_schema(parameters=[FilesListIn], responses={200: FilesListOut},
                   summary="List one folder: sub-folders first, then files (paginated)")
    def get(self, request, project_id: str):
        project = self.project(request, project_id)
        q = self.valid(self.FilesListIn, request.query_params)
        page = selectors.folder_list(project=project, **q)
        return Response(self.FilesListOut(page).data)


class FilesTreeApi(TransferView):
    op = Op.LIST

    class FilesTreeIn(serializers.Serializer):
        folder = serializers.CharField(required=False, default="", allow_blank=True,
                                       trim_whitespace=False)
        after = serializers.CharField(required=False, default="", allow_blank=True,
                                      trim_whitespace=False)
        limit = serializers.IntegerField(required=False, default=1000, min_value=1,
                                         max_value=10_000)

    @extend_schema(parameters=[FilesTreeIn], responses={200: inline_serializer(
        "FilesTreeOut", {"files": FileOut(many=True),
                         "next": serializers.CharField(allow_null=True)})},
        summary="Every file under a folder, recursively (keyset-paginated by path)")
    def get(self, request, project_id: str):
        project = self.project(request, project_id)
        q = self.valid(self.FilesTreeIn, request.query_params)
        files, nxt = selectors.folder_tree(project=project, **q)
        return Response({"files": FileOut(files, many=True).data, "next": nxt})


class PathsIn(serializers.Serializer):
    paths = serializers.ListField(child=serializers.CharField(max_length=4096,
                                                              trim_whitespace=False),
                                  min_length=1, max_length=selectors.MATCH_MAX)


class FilesMatchApi(TransferView):
    op = Op.LIST

    @extend_schema(request=PathsIn, responses={200: inline_serializer(
        "FilesMatchOut", {"found": serializers.ListField(child=serializers.CharField())})},
        summary="Which of these paths exist")
    def post(self, request, project_id: str):
        project = self.project(request, project_id)
        data = self.valid(PathsIn, request.data)
        return Response({"found": selectors.files_match(project=project,
                                                        paths=data["paths"])})


class FileInfoApi(TransferView):
    op = Op.LIST

    class FileInfoIn(serializers.Serializer):
        path = serializers.CharField(max_length=4096, trim_whitespace=False)

    @extend_schema(parameters=[FileInfoIn], responses={200: FileOut},
                   summary="One file's metadata")
    def get(self, request, project_id: str):
        project = self.project(request, project_id)
        q = self.valid(self.FileInfoIn, request.query_params)
        return Response(FileOut(selectors.file_get(project=project, **q)).data)


class FilesRemoveApi(TransferView):
    op = Op.REMOVE

    @extend_schema(request=PathsIn, responses={200: inline_serializer(
        "FilesRemoveOut", {"removed": serializers.ListField(child=serializers.CharField()),
                           "not_found": serializers.ListField(child=serializers.CharField())})},
        summary="Remove files")
    def post(self, request, project_id: str):
        project = self.project(request, project_id)
        data = self.valid(PathsIn, request.data)
        return Response(files_remove(project=project, by=request.user,
                                               ip=client_ip(request), **data))


class FolderRemoveApi(TransferView):
    op = Op.REMOVE

    class FolderRemoveIn(serializers.Serializer):
        folder = serializers.CharField(allow_blank=True, trim_whitespace=False,
                                       help_text="'' removes everything.")

    @extend_schema(request=FolderRemoveIn, responses={
        200: inline_serializer("FolderRemoveOut", {
            "folder": serializers.CharField(), "files": serializers.IntegerField(),
            "queued": serializers.BooleanField()}),
        202: inline_serializer("FolderRemoveQueuedOut", {
            "folder": serializers.CharField(), "files": serializers.IntegerField(),
            "queued": serializers.BooleanField()})},
        summary="Remove a folder (large folders in the background: 202)")
    def post(self, request, project_id: str):
        project = self.project(request, project_id)
        data = self.valid(self.FolderRemoveIn, request.data)
        result = folder_remove(project=project, by=request.user,
                                         ip=client_ip(request), **data)
        return Response(result, status=status.HTTP_202_ACCEPTED if result["queued"]
                        else status.HTTP_200_OK)


# --------------------------------------------------------------------------- download


class FilesDownloadApi(TransferView):
    op = Op.DOWNLOAD

    class FilesDownloadIn(serializers.Serializer):
        public_key = Base64Field(max_bytes=PUBLIC_KEY_BYTES, exact=PUBLIC_KEY_BYTES,
                                 help_text="The client's ephemeral X25519 public key.")
        paths = serializers.ListField(child=serializers.CharField(max_length=4096,
                                                                  trim_whitespace=False),
                                      required=False, min_length=1,
                                      max_length=DOWNLOAD_BATCH_MAX)
        folder = serializers.CharField(required=False, allow_blank=True,
                                       trim_whitespace=False)
        after = serializers.CharField(required=False, default="", allow_blank=True,
                                      trim_whitespace=False)
        limit = serializers.IntegerField(required=False, default=DOWNLOAD_BATCH_MAX,
                                         min_value=1, max_value=DOWNLOAD_BATCH_MAX)

        def validate(self, attrs):
            if "paths" in attrs and "folder" in attrs:
                raise serializers.ValidationError("Give paths or folder, not both.")
            return attrs

    class FilesDownloadOut(serializers.Serializer):
        class FilesDownloadItem(serializers.Serializer):
            path = serializers.CharField()
            header = Base64Field(max_bytes=HEADER_MAX_BYTES,
                                 help_text="Crypt4GH header addressed to public_key.")
            checksum = serializers.CharField()
            size_original = serializers.IntegerField()
            size_stored = serializers.IntegerField()
            compressed = serializers.BooleanField()
            url = serializers.CharField(help_text="GET (Range supported) the segments.")

        files = FilesDownloadItem(many=True)
        missing = serializers.ListField(child=serializers.CharField())
        expires_in = serializers.IntegerField()
        next = serializers.CharField(allow_null=True)

    @extend_schema(request=FilesDownloadIn, responses={200: FilesDownloadOut},
                   summary="Download: headers re-encrypted to the client's key + GET URLs")
    def post(self, request, project_id: str):
        project = self.project(request, project_id)
        v = self.valid(self.FilesDownloadIn, request.data)
        result = files_download_prepare(
            project=project, user=request.user, kek=request_kek(request), ip=client_ip(request),
            recipient_public_key=v["public_key"], paths=v.get("paths"),
            folder=v.get("folder"), after=v["after"], limit=v["limit"])
        _absolute(request, result["files"])
        return Response(self.FilesDownloadOut(result).data)


class ProjectStorageApi(TransferView):
    op = Op.LIST

    @extend_schema(responses={200: inline_serializer("ProjectStorageOut", {
        "files": serializers.IntegerField(), "stored_bytes": serializers.IntegerField(),
        "unit_stored_bytes": serializers.IntegerField(),
        "unit_reserved_bytes": serializers.IntegerField(),
        "unit_quota_bytes": serializers.IntegerField(allow_null=True)})},
        summary="Stored bytes of the project (and, for unit staff, the unit's quota)")
    def get(self, request, project_id: str):
        project = self.project(request, project_id)
        totals = selectors.project_totals(project=project)
        staff = selectors.user_is_project_staff(request.user, project)
        # The unit's figures are for its staff only (not even queried for others).
        stored, reserved = (selectors.unit_bytes_used(unit_id=project.unit_id) if staff
                            else (0, 0))
        return Response({"files": totals.files, "stored_bytes": totals.stored_bytes,
                         "unit_stored_bytes": stored, "unit_reserved_bytes": reserved,
                         "unit_quota_bytes": project.unit.quota_bytes if staff else None})


class UploadHeaderCheckApi(TransferView):
    """For files encrypted elsewhere (`dds data put --already-encrypted`): is this header
    for the project's key? Answers it re-encrypted to the caller's ephemeral key."""

    op = Op.UPLOAD

    class HeaderCheckIn(serializers.Serializer):
        header = Base64Field(max_bytes=HEADER_MAX_BYTES)
        public_key = Base64Field(max_bytes=PUBLIC_KEY_BYTES, exact=PUBLIC_KEY_BYTES,
                                 help_text="The client's ephemeral X25519 public key.")

    @extend_schema(request=HeaderCheckIn, responses={200: inline_serializer(
        "HeaderCheckOut", {"header": serializers.CharField()})},
        summary="Check a Crypt4GH header against the project key before uploading")
    def post(self, request, project_id: str):
        project = self.project(request, project_id)
        data = self.valid(self.HeaderCheckIn, request.data)
        header = upload_header_check(
            project=project, by=request.user, kek=request_kek(request),
            header=data["header"], recipient_public_key=data["public_key"])
        return Response({"header": base64.b64encode(header).decode()})
