"""API routes of the transfers app, mounted under /api/v1/ by ddsite/urls.py."""

from django.urls import path

from transfers import api

_P = "projects/<str:project_id>"
_U = _P + "/uploads/<str:upload_id>"

urlpatterns = [
    path(f"{_P}/uploads", api.UploadStartApi.as_view(), name="transfers-upload-start"),
    path(f"{_P}/uploads/batch", api.UploadsStartBatchApi.as_view(),
         name="transfers-uploads-start-batch"),
    path(f"{_P}/uploads/complete-batch", api.UploadsCompleteBatchApi.as_view(),
         name="transfers-uploads-complete-batch"),
    path(f"{_P}/uploads/header-check", api.UploadHeaderCheckApi.as_view(),
         name="transfers-upload-header-check"),
    path(f"{_U}", api.UploadAbortApi.as_view(), name="transfers-upload-abort"),
    path(f"{_U}/parts", api.UploadPartsApi.as_view(), name="transfers-upload-parts"),
    path(f"{_U}/part-urls", api.UploadPartUrlsApi.as_view(),
         name="transfers-upload-part-urls"),
    path(f"{_U}/complete", api.UploadCompleteApi.as_view(), name="transfers-upload-complete"),
    path(f"{_P}/files", api.FilesListApi.as_view(), name="transfers-files-list"),
    path(f"{_P}/files/tree", api.FilesTreeApi.as_view(), name="transfers-files-tree"),
    path(f"{_P}/files/match", api.FilesMatchApi.as_view(), name="transfers-files-match"),
    path(f"{_P}/files/info", api.FileInfoApi.as_view(), name="transfers-file-info"),
    path(f"{_P}/files/remove", api.FilesRemoveApi.as_view(), name="transfers-files-remove"),
    path(f"{_P}/files/remove-folder", api.FolderRemoveApi.as_view(),
         name="transfers-folder-remove"),
    path(f"{_P}/files/download", api.FilesDownloadApi.as_view(),
         name="transfers-files-download"),
    path(f"{_P}/storage", api.ProjectStorageApi.as_view(), name="transfers-project-storage"),
]
