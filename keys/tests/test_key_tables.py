"""A copy of every key table, without a user's password, opens no project key and no file."""

import pytest

import c4gh
from accounts.models import Role, User
from keys import primitives
from keys.models import ProjectUserKey
from keys.services import project_access_grant, project_private_key
from keys.tests.helpers import keyed_user
from projects.models import Project
from projects.services import project_create


@pytest.mark.django_db
def test_dump_of_key_tables_reveals_no_key(unit_a):
    admin, _, admin_kek = keyed_user(Role.UNIT_ADMIN, unit_a)
    keyed_user(Role.UNIT_ADMIN, unit_a)
    researcher, _, _ = keyed_user()
    project = project_create(unit=unit_a, by=admin, title="secret", force=True)
    project_access_grant(project=project, grantee=researcher, granter=admin,
                         granter_kek=admin_kek)
    project_sk = project_private_key(project=project, user=admin, kek=admin_kek)
    whole, _ = c4gh.encrypt_bytes(b"genome", [bytes(project.public_key)], compress=False)

    # The "dump": every stored byte of the user, project and key tables.
    dump = []
    for u in User.objects.all():
        dump += [bytes(u.public_key), bytes(u.private_key_encrypted), bytes(u.kdf_salt),
                 str(u.kdf_params).encode(), u.password.encode()]
    for p in Project.objects.all():
        dump.append(bytes(p.public_key))
    for row in ProjectUserKey.objects.all():
        dump.append(bytes(row.key_encrypted))
    blob = b"".join(dump)
    assert project_sk not in blob
    admin_der = primitives.unwrap_private_key(bytes(admin.private_key_encrypted), admin_kek,
                                              admin.username)
    assert admin_der not in blob

    # Without the password, the wrapped user keys do not open: a guessed KEK fails...
    for u in User.objects.exclude(private_key_encrypted=None):
        with pytest.raises(primitives.KeyWrapError):
            primitives.unwrap_private_key(bytes(u.private_key_encrypted), b"\x00" * 32,
                                          u.username)
    # ...and the project key copies are RSA-OAEP ciphertexts, not X25519 keys: used as a
    # key they open no file.
    for row in ProjectUserKey.objects.all():
        candidate = bytes(row.key_encrypted)[:32]
        with pytest.raises(c4gh.NoMatchingKeyError):
            c4gh.decrypt_bytes(whole, candidate)
