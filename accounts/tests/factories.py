import secrets

import factory
from django.utils import timezone

from accounts.models import Invite, Role, Unit, User

# Random per test run: no credential is written in a fixture file.
TEST_PASSWORD = "Pw-" + secrets.token_urlsafe(12)


class UnitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Unit
        django_get_or_create = ("internal_ref",)

    name = factory.Sequence(lambda n: f"Unit {n}")
    display_name = factory.LazyAttribute(lambda o: f"{o.name} facility")
    contact_email = factory.Sequence(lambda n: f"unit{n}@example.org")
    internal_ref = factory.Sequence(lambda n: f"u{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.org")
    name = factory.LazyAttribute(lambda o: o.username.title())
    role = Role.RESEARCHER
    unit = None

    @factory.post_generation
    def password(obj, create, extracted, **kwargs):
        obj.set_password(extracted or TEST_PASSWORD)
        if create:
            obj.save(update_fields=["password"])


class InviteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invite

    email = factory.Sequence(lambda n: f"invitee{n}@example.org")
    role = Role.RESEARCHER
    expires_at = factory.LazyFunction(lambda: timezone.now() + timezone.timedelta(days=7))
