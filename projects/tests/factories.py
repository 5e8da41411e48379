import factory

from accounts.tests.factories import UnitFactory
from projects.models import Project, ProjectMembership


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    unit = factory.SubFactory(UnitFactory)
    public_id = factory.Sequence(lambda n: f"p-{n:05d}")
    title = factory.Sequence(lambda n: f"Project {n}")
    bucket = factory.LazyAttribute(lambda o: f"dds-{o.public_id}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProjectMembership

    project = factory.SubFactory(ProjectFactory)
    is_owner = False
