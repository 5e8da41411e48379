"""Migration 0004 moves django-otp's authenticator apps (keys in clear) into ours (sealed)
and drops the old tables, so an upgrade keeps every user's app and leaves no clear key."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import connection

from accounts.models import TOTPDevice

pytestmark = pytest.mark.django_db

migration = importlib.import_module("accounts.migrations.0004_second_factor_devices_sealed")


def test_old_authenticator_apps_are_sealed_and_the_clear_table_dropped(researcher_keyed):
    user, _ = researcher_keyed
    key = bytes(range(20))
    with connection.cursor() as cursor:
        cursor.execute("""CREATE TABLE otp_totp_totpdevice (
            id serial PRIMARY KEY, user_id bigint NOT NULL, name varchar(64) NOT NULL,
            confirmed boolean NOT NULL, key varchar(80) NOT NULL, step smallint NOT NULL,
            t0 bigint NOT NULL, digits smallint NOT NULL, tolerance smallint NOT NULL,
            drift smallint NOT NULL, last_t bigint NOT NULL)""")
        cursor.execute("INSERT INTO otp_totp_totpdevice (user_id, name, confirmed, key, step, "
                       "t0, digits, tolerance, drift, last_t) VALUES "
                       "(%s, 'phone', true, %s, 30, 0, 6, 1, 0, 12345)", [user.pk, key.hex()])
        cursor.execute("CREATE TABLE otp_email_emaildevice (id serial PRIMARY KEY, "
                       "token varchar(16))")
    with connection.schema_editor() as editor:
        migration.move_totp_devices(apps, editor)
    device = TOTPDevice.objects.get(user=user)
    assert device.bin_key == key and device.confirmed and device.last_t == 12345
    assert key.hex() not in bytes(device.key_sealed).hex()
    tables = connection.introspection.table_names()
    assert "otp_totp_totpdevice" not in tables and "otp_email_emaildevice" not in tables
