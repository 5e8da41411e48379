import factory

from projects.tests.factories import ProjectFactory
from transfers.models import File


class FileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = File

    project = factory.SubFactory(ProjectFactory)
    path = factory.Sequence(lambda n: f"folder/file{n}.txt")
    name = factory.LazyAttribute(lambda o: o.path.rsplit("/", 1)[-1])
    folder = factory.LazyAttribute(lambda o: o.path.rpartition("/")[0])
    object_key = factory.Sequence(lambda n: f"obj-{n:08d}")
    size_original = 100
    size_stored = 128
    header = b"\x00" * 124
    checksum = "0" * 64
