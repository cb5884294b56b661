"""Run entries: canonical JSON round trip, refusal of non-canonical or personal data, salts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from audit_testkit import make_entry
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.audit import BatchSalt, EntryError, RunEntry, digest_batch, digest_result, sha256_hex
from shared.audit.entry import canonical_batch_bytes
from shared.errors import BsnError


def test_canonical_round_trip() -> None:
    e = make_entry(5)
    data = e.canonical_bytes()
    assert RunEntry.from_canonical_bytes(data) == e
    assert b" " not in data and b"\n" not in data
    obj = json.loads(data)
    assert list(obj) == sorted(obj)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.datetimes(timezones=st.just(UTC)), st.integers(0, 10**6))
def test_round_trip_property(i: int, when: datetime, micros: int) -> None:
    e = make_entry(i).model_copy(
        update={
            "requested_at": when,
            "started_at": when,
            "finished_at": when + timedelta(microseconds=micros),
        }
    )
    e = RunEntry.model_validate(e.model_dump())  # re-validate the copy
    assert RunEntry.from_canonical_bytes(e.canonical_bytes()) == e


def test_non_canonical_forms_are_refused() -> None:
    data = make_entry(1).canonical_bytes()
    obj = json.loads(data)
    for variant in [
        json.dumps(obj, sort_keys=True).encode(),  # spaces
        json.dumps(obj).encode() if list(obj) != sorted(obj) else data + b" ",
        data.replace(b"}", b"} ", 1),
        b"[]",
        b"\xff",
        b"{",
    ]:
        with pytest.raises(EntryError):
            RunEntry.from_canonical_bytes(variant)


def test_unknown_fields_and_bad_values_are_refused() -> None:
    obj = json.loads(make_entry(1).canonical_bytes())
    for key, value in [
        ("bsn", "111222333"),
        ("rule_digest", "not hex"),
        ("household_count", -1),
        ("mode", "plaintext"),
        ("finished_at", "2020-01-01T00:00:00.000000Z"),  # before started_at
        ("statement", "AAAA"),  # statement without matching digest
    ]:
        bad = dict(obj, **{key: value})
        data = json.dumps(bad, sort_keys=True, separators=(",", ":")).encode()
        with pytest.raises(EntryError):
            RunEntry.from_canonical_bytes(data)


def test_a_bsn_in_a_label_is_refused() -> None:
    obj = json.loads(make_entry(1).canonical_bytes())
    obj["run_id"] = "run-111222333"
    with pytest.raises(EntryError, match="BSN"):
        RunEntry.create(**obj)
    obj["run_id"] = "run-123456789"  # nine digits, fails the elfproef: not a BSN
    RunEntry.create(**obj)


def test_entry_holds_no_bsn_or_decision_in_clear() -> None:
    salt = BatchSalt(b"s" * 32)
    e = make_entry(3, salt)
    data = e.canonical_bytes()
    assert b"111222333" not in data
    assert b"true" not in data and b"false" not in data
    # Without the salt, the batch digest is not the plain hash of the batch.
    plain = sha256_hex(canonical_batch_bytes([("h3", ["111222333"])]))
    assert e.batch_digest != plain
    assert e.batch_digest == digest_batch(salt, [("h3", ["111222333"])])


def test_salted_digests() -> None:
    a, b = BatchSalt(b"a" * 32), BatchSalt(b"b" * 32)
    batch = [("h1", ["111222333"])]
    assert digest_batch(a, batch) != digest_batch(b, batch)
    assert digest_result(a, [("h1", True)]) != digest_result(a, [("h1", False)])
    assert "aaaa" not in repr(a)
    with pytest.raises(EntryError):
        BatchSalt(b"short")
    with pytest.raises(BsnError):
        digest_batch(a, [("h1", ["123456789"])])


def test_statement_is_bound_to_its_digest() -> None:
    import base64

    statement = b"signed run statement"
    obj = json.loads(make_entry(1).canonical_bytes())
    obj.update(
        statement=base64.b64encode(statement).decode(), statement_digest=sha256_hex(statement)
    )
    e = RunEntry.create(**obj)
    assert e.statement_bytes() == statement
    assert RunEntry.from_canonical_bytes(e.canonical_bytes()) == e


def test_naive_times_are_refused() -> None:
    obj = json.loads(make_entry(1).canonical_bytes())
    obj["requested_at"] = datetime(2025, 1, 1)
    with pytest.raises(EntryError):
        RunEntry.create(**obj)
