"""Key primitives: Argon2id KEK, RSA user keys wrapped with AES-GCM, RSA-OAEP project keys."""

import os

import pytest

from keys import primitives as p
from keys.tests.helpers import public_key_from_private, rewrap_private_key

FAST = {"time_cost": 1, "memory_cost_kib": 1024, "parallelism": 1}


@pytest.fixture(scope="module")
def user_keys():
    return p.generate_user_keypair(bits=1024)


def test_kdf_params_roundtrip():
    params = p.KdfParams()
    assert (params.time_cost, params.memory_cost_kib, params.parallelism) == (2, 524288, 8)
    assert p.KdfParams.from_dict(params.to_dict()) == params
    with pytest.raises(ValueError):
        p.KdfParams.from_dict({**params.to_dict(), "algorithm": "scrypt"})


def test_derive_kek_deterministic():
    salt = p.new_salt()
    assert len(salt) == 32
    k1 = p.derive_kek("pw", salt, **FAST)
    assert len(k1) == 32
    assert p.derive_kek("pw", salt, **FAST) == k1
    assert p.derive_kek("pw2", salt, **FAST) != k1
    assert p.derive_kek("pw", p.new_salt(), **FAST) != k1
    assert p.derive_kek_with("pw", salt, p.KdfParams(**FAST)) == k1


def test_wrap_unwrap_roundtrip(user_keys):
    priv, pub = user_keys
    kek = p.derive_kek("password", p.new_salt(), **FAST)
    wrapped = p.wrap_private_key(priv, kek, "alice")
    assert p.unwrap_private_key(wrapped, kek, "alice") == priv
    assert public_key_from_private(priv) == pub
    assert wrapped[12:] != p.wrap_private_key(priv, kek, "alice")[12:]  # fresh nonce


def test_wrong_password_fails(user_keys):
    priv, _ = user_keys
    salt = p.new_salt()
    wrapped = p.wrap_private_key(priv, p.derive_kek("right", salt, **FAST), "alice")
    with pytest.raises(p.KeyWrapError, match="wrong password"):
        p.unwrap_private_key(wrapped, p.derive_kek("wrong", salt, **FAST), "alice")


def test_aad_binds_username(user_keys):
    priv, _ = user_keys
    kek = os.urandom(32)
    wrapped = p.wrap_private_key(priv, kek, "alice")
    with pytest.raises(p.KeyWrapError):
        p.unwrap_private_key(wrapped, kek, "mallory")
    tampered = bytearray(wrapped)
    tampered[-1] ^= 1
    with pytest.raises(p.KeyWrapError):
        p.unwrap_private_key(bytes(tampered), kek, "alice")


def test_rewrap_for_password_change(user_keys):
    priv, _ = user_keys
    old, new = os.urandom(32), os.urandom(32)
    wrapped = rewrap_private_key(p.wrap_private_key(priv, old, "bob"), old, new, "bob")
    assert p.unwrap_private_key(wrapped, new, "bob") == priv
    with pytest.raises(p.KeyWrapError):
        p.unwrap_private_key(wrapped, old, "bob")


def test_project_key_wrap_roundtrip(user_keys):
    import c4gh

    priv, pub = user_keys
    project_sk, project_pk = c4gh.generate_keypair()
    wrapped = p.wrap_project_key(project_sk, pub)
    assert len(wrapped) == 128  # RSA-1024 modulus
    assert p.unwrap_project_key(wrapped, priv) == project_sk
    other_priv, _ = p.generate_user_keypair(bits=1024)
    with pytest.raises(p.KeyWrapError):
        p.unwrap_project_key(wrapped, other_priv)


def test_production_argon2_parameters():
    """The one test that pays for the real cost: 2 passes over 512 MiB, 8 lanes."""
    params = p.KdfParams()
    salt = p.new_salt()
    kek = p.derive_kek_with("correct horse battery staple", salt, params)
    assert len(kek) == 32
    wrapped = p.wrap_private_key(b"der-bytes", kek, "carol")
    assert p.unwrap_private_key(wrapped, kek, "carol") == b"der-bytes"
