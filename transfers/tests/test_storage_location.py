import pytest
from django.core.exceptions import ValidationError

from core.sealing import SealError, unseal
from transfers.models import StorageLocation
from transfers.services import storage_location_save
from transfers.storage.credentials import storage_location_credentials


@pytest.mark.django_db
def test_credentials_are_sealed_at_rest(unit_a, settings):
    settings.DDS_ALLOWED_STORAGE_REGIONS = ["se-sto"]
    loc = storage_location_save(
        location=StorageLocation(unit=unit_a, name="s3", endpoint="https://s3.example.se",
                                 region="se-sto"),
        by=None, access_key="AKIAEXAMPLE", secret_key="very-secret-value")
    raw = StorageLocation.objects.get(pk=loc.pk)
    assert b"very-secret-value" not in bytes(raw.secret_key_sealed)
    assert b"AKIAEXAMPLE" not in bytes(raw.access_key_sealed)
    assert storage_location_credentials(raw) == ("AKIAEXAMPLE", "very-secret-value")
    # A sealed value is bound to its purpose: the access key does not open as the secret.
    with pytest.raises(SealError):
        unseal(raw.access_key_sealed, purpose="storage-location-secret-key")


@pytest.mark.django_db
def test_region_outside_the_allowed_list_is_refused(unit_a, settings):
    settings.DDS_ALLOWED_STORAGE_REGIONS = ["se-sto"]
    with pytest.raises(ValidationError) as exc:
        storage_location_save(location=StorageLocation(unit=unit_a, name="x",
                                                       region="us-east-1"), by=None)
    assert "us-east-1" in str(exc.value)
    assert not StorageLocation.objects.exists()


@pytest.mark.django_db
def test_endpoint_outside_the_allowed_list_is_refused(unit_a, settings):
    settings.DDS_ALLOWED_STORAGE_REGIONS = ["se-sto"]
    settings.DDS_ALLOWED_STORAGE_ENDPOINTS = ["example.se"]
    storage_location_save(location=StorageLocation(
        unit=unit_a, name="ok", region="se-sto", endpoint="https://s3.example.se"), by=None)
    with pytest.raises(ValidationError):
        storage_location_save(location=StorageLocation(
            unit=unit_a, name="bad", region="se-sto", endpoint="https://s3.example.com"),
            by=None)


@pytest.mark.django_db
def test_activating_a_location_retires_the_previous_one(unit_a, settings):
    settings.DDS_ALLOWED_STORAGE_REGIONS = ["local"]
    first = storage_location_save(location=StorageLocation(unit=unit_a, name="a",
                                                           region="local"), by=None)
    second = storage_location_save(location=StorageLocation(unit=unit_a, name="b",
                                                            region="local"), by=None)
    first.refresh_from_db()
    assert not first.is_active and second.is_active
