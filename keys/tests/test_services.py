"""Key services: user keys, project keys, grants, revocation, reset and access fix."""

import pytest

import c4gh
from accounts.models import Role
from keys.models import ProjectUserKey
from keys.services import (
    KeyAccessError,
    headers_reencrypt,
    project_access_grant,
    project_access_revoke,
    project_keys_destroy,
    project_private_key,
    user_kek_derive,
    user_keys_reset,
    user_keys_rewrap,
    user_private_key,
)
from keys.tests.helpers import keyed_user, public_key_from_private
from projects.models import ProjectMembership
from projects.services import project_create
from projects.services.access import access_fix_grants as project_access_fix


@pytest.fixture
def unit_world(unit_a):
    admin, _, admin_kek = keyed_user(Role.UNIT_ADMIN, unit_a)
    keyed_user(Role.UNIT_ADMIN, unit_a)
    staff, _, staff_kek = keyed_user(Role.UNIT_PERSONNEL, unit_a)
    researcher, password, researcher_kek = keyed_user()
    project = project_create(unit=unit_a, by=admin, title="P", force=True)
    return {"admin": admin, "admin_kek": admin_kek, "staff": staff, "staff_kek": staff_kek,
            "researcher": researcher, "password": password, "researcher_kek": researcher_kek,
            "project": project}


@pytest.mark.django_db
def test_user_key_is_wrapped_under_the_password(unit_world):
    user = unit_world["researcher"]
    assert user.private_key_encrypted and user.public_key and len(bytes(user.kdf_salt)) == 32
    der = user_private_key(user=user, kek=unit_world["researcher_kek"])
    assert public_key_from_private(der) == bytes(user.public_key)
    wrong = user_kek_derive(user=user, password="Not-the-password1")
    with pytest.raises(KeyAccessError):
        user_private_key(user=user, kek=wrong)


@pytest.mark.django_db
def test_project_key_is_wrapped_to_every_unit_staff_member(unit_world):
    project = unit_world["project"]
    holders = set(ProjectUserKey.objects.filter(project=project)
                  .values_list("user__username", flat=True))
    assert unit_world["admin"].username in holders and unit_world["staff"].username in holders
    assert unit_world["researcher"].username not in holders
    sk_admin = project_private_key(project=project, user=unit_world["admin"],
                                   kek=unit_world["admin_kek"])
    sk_staff = project_private_key(project=project, user=unit_world["staff"],
                                   kek=unit_world["staff_kek"])
    assert sk_admin == sk_staff
    assert c4gh.derive_public_key(sk_admin) == bytes(project.public_key)


@pytest.mark.django_db
def test_grant_and_revoke(unit_world):
    project, researcher = unit_world["project"], unit_world["researcher"]
    with pytest.raises(KeyAccessError, match="no key"):
        project_private_key(project=project, user=researcher,
                            kek=unit_world["researcher_kek"])
    project_access_grant(project=project, grantee=researcher, granter=unit_world["staff"],
                         granter_kek=unit_world["staff_kek"])
    assert project_private_key(project=project, user=researcher,
                               kek=unit_world["researcher_kek"])
    assert project_access_revoke(project=project, user=researcher)
    with pytest.raises(KeyAccessError):
        project_private_key(project=project, user=researcher,
                            kek=unit_world["researcher_kek"])


@pytest.mark.django_db
def test_granting_needs_the_granters_own_key(unit_world):
    # A researcher without a copy cannot grant, whatever their password.
    other, _, other_kek = keyed_user()
    with pytest.raises(KeyAccessError):
        project_access_grant(project=unit_world["project"], grantee=other,
                             granter=unit_world["researcher"],
                             granter_kek=unit_world["researcher_kek"])


@pytest.mark.django_db
def test_password_change_keeps_access(unit_world):
    project, researcher = unit_world["project"], unit_world["researcher"]
    project_access_grant(project=project, grantee=researcher, granter=unit_world["admin"],
                         granter_kek=unit_world["admin_kek"])
    user_keys_rewrap(user=researcher, kek=unit_world["researcher_kek"],
                     new_password="New-password-42")
    researcher.refresh_from_db()
    new_kek = user_kek_derive(user=researcher, password="New-password-42")
    assert project_private_key(project=project, user=researcher, kek=new_kek)
    with pytest.raises(KeyAccessError):
        user_private_key(user=researcher, kek=unit_world["researcher_kek"])


@pytest.mark.django_db
def test_reset_loses_access_and_access_fix_restores_it(unit_world):
    project, researcher = unit_world["project"], unit_world["researcher"]
    ProjectMembership.objects.create(project=project, user=researcher)
    project_access_grant(project=project, grantee=researcher, granter=unit_world["admin"],
                         granter_kek=unit_world["admin_kek"])
    old_public = bytes(researcher.public_key)
    assert user_keys_reset(user=researcher, new_password="Reset-password-7") == 1
    researcher.refresh_from_db()
    assert bytes(researcher.public_key) != old_public
    kek = user_kek_derive(user=researcher, password="Reset-password-7")
    with pytest.raises(KeyAccessError):
        project_private_key(project=project, user=researcher, kek=kek)

    fixed = project_access_fix(user=researcher, granter=unit_world["staff"],
                               granter_kek=unit_world["staff_kek"])
    assert fixed == [project]
    assert project_private_key(project=project, user=researcher, kek=kek)
    # Nothing left to fix: idempotent.
    assert project_access_fix(user=researcher, granter=unit_world["staff"],
                              granter_kek=unit_world["staff_kek"]) == []


@pytest.mark.django_db
def test_access_fix_only_restores_entitled_projects(unit_world):
    # Not a member: the fix grants nothing even though the granter could.
    outsider, _, _ = keyed_user()
    assert project_access_fix(user=outsider, granter=unit_world["admin"],
                              granter_kek=unit_world["admin_kek"]) == []


@pytest.mark.django_db
def test_headers_reencrypted_for_an_ephemeral_key(unit_world):
    project = unit_world["project"]
    header, _result = c4gh.encrypt_bytes(b"hello", [bytes(project.public_key)],
                                        compress=False)
    client_sk, client_pk = c4gh.generate_keypair()
    hlen = c4gh.header_length(header)
    [new_header] = headers_reencrypt(project=project, user=unit_world["staff"],
                                     kek=unit_world["staff_kek"], headers=[header[:hlen]],
                                     recipient_public_key=client_pk)
    assert c4gh.decrypt_bytes(new_header + header[hlen:], client_sk) == b"hello"
    with pytest.raises(ValueError):
        headers_reencrypt(project=project, user=unit_world["staff"],
                          kek=unit_world["staff_kek"], headers=[header[:hlen]],
                          recipient_public_key=b"short")


@pytest.mark.django_db
def test_destroying_keys_removes_every_copy(unit_world):
    project = unit_world["project"]
    project_keys_destroy(project=project)
    assert not ProjectUserKey.objects.filter(project=project).exists()
    with pytest.raises(KeyAccessError):
        project_private_key(project=project, user=unit_world["admin"],
                            kek=unit_world["admin_kek"])
