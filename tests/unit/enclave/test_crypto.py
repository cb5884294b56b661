"""Keys at rest, the registry, DSSE envelopes, approvals and the run statement."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.crypto import (
    Approval,
    Envelope,
    KeyFileError,
    Registry,
    RegistryError,
    Role,
    RoleError,
    SignatureInvalid,
    SigningKey,
    open_approval,
    pae,
    policy_shortfall,
    read_public,
    sign,
)
from tests.unit.enclave.enclave_testkit import FAST_SCRYPT, NOW, make_identities

D = "ab" * 32


def test_key_file_round_trip_and_refusals(tmp_path: Path) -> None:
    key = SigningKey.generate("uwv-operator")
    path = tmp_path / "k.json"
    key.save(path, b"correct horse", scrypt_n=FAST_SCRYPT)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert "PRIVATE" not in path.read_text() and key.key_id in path.read_text()
    again = SigningKey.load(path, b"correct horse")
    assert again.key_id == key.key_id and read_public(path).key_id == key.key_id
    assert again.public.verify(key.sign(b"x"), b"x")
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        SigningKey.load(path, b"wrong")
    doc = json.loads(path.read_text())
    doc["owner"] = "someone else"  # the header is authenticated
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyFileError, match="wrong passphrase, or the file was changed"):
        SigningKey.load(path, b"correct horse")
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        key.save(path, b"x", scrypt_n=FAST_SCRYPT)
    with pytest.raises(KeyFileError, match="empty passphrase"):
        key.save(tmp_path / "k2.json", b"")
    (tmp_path / "junk").write_text("{")
    with pytest.raises(KeyFileError, match="not JSON"):
        SigningKey.load(tmp_path / "junk", b"x")
    assert "key_id" in repr(key) and "raw" not in repr(key)


def test_registry_round_trip_and_errors(tmp_path: Path) -> None:
    ids = make_identities()
    path = tmp_path / "registry.yaml"
    path.write_text(ids.registry.to_yaml())
    loaded = Registry.from_file(path)
    assert loaded == ids.registry
    assert loaded.require(ids.uwv.key_id, Role.APPROVER).organisation == "UWV"
    with pytest.raises(RoleError, match="may not act as author"):
        loaded.require(ids.uwv.key_id, Role.AUTHOR)
    with pytest.raises(RegistryError, match="not in the key registry"):
        loaded.entry(ids.outsider.key_id)
    path.write_text("keys: [{name: x}]")
    with pytest.raises(RegistryError, match="not valid"):
        Registry.from_file(path)
    dup = ids.registry.model_dump(mode="json")
    dup["keys"].append(dict(dup["keys"][0], name="again"))
    with pytest.raises(RegistryError, match="listed twice"):
        Registry.parse(dup)


@settings(max_examples=30, deadline=None)
@given(payload=st.binary(max_size=200), ptype=st.text(min_size=1, max_size=40))
def test_envelope_round_trip_and_pae_binds_the_type(payload: bytes, ptype: str) -> None:
    key = SigningKey.generate("k")
    env = sign(ptype, payload, key)
    again = Envelope.from_json(env.to_json())
    assert again == env
    assert key.public.verify(env.signatures[0][1], pae(ptype, payload))
    assert not key.public.verify(env.signatures[0][1], pae(ptype + "x", payload))


def test_envelope_verification_refusals() -> None:
    ids = make_identities()
    env = sign("t", b"hello", ids.svb)
    assert env.verify(ids.registry, Role.AUTHOR, "t").name == "svb"
    with pytest.raises(SignatureInvalid, match="carries 't'"):
        env.verify(ids.registry, Role.AUTHOR, "u")
    with pytest.raises(RoleError):
        env.verify(ids.registry, Role.RUNNER, "t")
    with pytest.raises(SignatureInvalid, match="invalid"):
        Envelope("t", b"hellO", env.signatures).verify(ids.registry, Role.AUTHOR, "t")
    with pytest.raises(SignatureInvalid, match="not signed"):
        Envelope("t", b"hello", ()).verify(ids.registry, Role.AUTHOR, "t")
    with pytest.raises(RegistryError):
        sign("t", b"x", ids.outsider).verify(ids.registry, Role.AUTHOR, "t")
    for garbage in (b"", b"[]", b'{"payload": "%%%", "payloadType": "t", "signatures": []}'):
        with pytest.raises(SignatureInvalid):
            Envelope.from_json(garbage)


def test_approval_policy_needs_distinct_keys_in_force() -> None:
    ids = make_identities()
    reg = ids.registry
    uwv = open_approval(Approval.for_window(D, Role.APPROVER, NOW, 30).sign(ids.uwv), reg)
    aud = open_approval(Approval.for_window(D, Role.AUDITOR, NOW, 30).sign(ids.auditor), reg)
    assert policy_shortfall([uwv], reg, NOW + timedelta(days=1)) == ["auditor"]
    assert policy_shortfall([uwv, aud], reg, NOW + timedelta(days=1)) == []
    assert policy_shortfall([uwv, aud], reg, NOW - timedelta(days=1)) != []  # not yet
    assert policy_shortfall([uwv, aud], reg, NOW + timedelta(days=31)) != []  # expired
    with pytest.raises(RoleError):  # claims the auditor role with UWV's approver key
        open_approval(Approval.for_window(D, Role.AUDITOR, NOW, 30).sign(ids.uwv), reg)
    with pytest.raises(SignatureInvalid, match="malformed"):
        open_approval(sign("application/vnd.aio.rule-approval.v1+json", b"{}", ids.uwv), reg)
