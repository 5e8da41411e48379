import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from projects.tests.factories import ProjectFactory
from transfers.models import File, Upload, UploadStatus, Usage
from transfers.tests.factories import FileFactory


@pytest.mark.django_db
def test_duplicate_path_in_a_project_is_refused():
    f = FileFactory(path="a/b.txt")
    with pytest.raises(IntegrityError), transaction.atomic():
        FileFactory(project=f.project, path="a/b.txt")
    # The same path in another project is fine.
    FileFactory(path="a/b.txt")
    assert File.objects.filter(path="a/b.txt").count() == 2


@pytest.mark.django_db
def test_object_keys_are_unique():
    f = FileFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        FileFactory(object_key=f.object_key)


def _upload(project, path, status=UploadStatus.IN_PROGRESS, n=0):
    return Upload.objects.create(public_id=f"up{path}{n}{status}", project=project, path=path,
                                 object_key=f"k-{path}-{n}-{status}", size_original=1,
                                 reserved_bytes=1, part_size=65564, status=status)


@pytest.mark.django_db
def test_only_one_upload_in_progress_per_path():
    project = ProjectFactory()
    _upload(project, "x")
    _upload(project, "x", status=UploadStatus.ABORTED)
    with pytest.raises(IntegrityError), transaction.atomic():
        _upload(project, "x", n=1)


@pytest.mark.django_db
def test_usage_period_must_be_positive_and_unique():
    project = ProjectFactory()
    start = timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        Usage.objects.create(project=project, period_start=start, period_end=start)
    Usage.objects.create(project=project, period_start=start,
                         period_end=start + timezone.timedelta(days=30))
    with pytest.raises(IntegrityError), transaction.atomic():
        Usage.objects.create(project=project, period_start=start,
                             period_end=start + timezone.timedelta(days=31))
