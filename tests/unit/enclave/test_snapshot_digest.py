"""The snapshot content digest: RFC 6962 tree hash over canonical record blocks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.enclave.enclave_testkit import PERIOD
from uwv_server.enclave.snapshot import cached_snapshot_digest, merkle_root, snapshot_digest
from uwv_server.store import Snapshot, import_polis
from uwv_server.synth import generate


def _rfc6962(leaves: list[bytes]) -> bytes:
    """The recursive definition of RFC 6962 §2.1 (split at the largest power of two < n)."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _rfc6962(leaves[:k]) + _rfc6962(leaves[k:])).digest()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=8), min_size=1, max_size=40))
def test_merkle_root_is_the_rfc6962_tree_hash(data: list[bytes]) -> None:
    leaves = [hashlib.sha256(b"\x00" + d).digest() for d in data]
    assert merkle_root(leaves) == _rfc6962(leaves).hex()


def test_empty_tree() -> None:
    assert merkle_root([]) == hashlib.sha256(b"").hexdigest()


def test_digest_pins_content_not_file_bytes(tmp_path: Path) -> None:
    generate(40, PERIOD, tmp_path / "synth", seed=3)
    import_polis(tmp_path / "synth" / "polis.parquet", tmp_path / "a")
    first = Snapshot.open_current(tmp_path / "a").directory
    d1 = snapshot_digest(first)
    # Same records, shuffled and written by another writer: other file bytes, same digest.
    shuffled = tmp_path / "shuffled.parquet"
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * FROM read_parquet('{first / 'records.parquet'}') ORDER BY random()) "
        f"TO '{shuffled}' (FORMAT parquet, COMPRESSION zstd)"
    )
    other = tmp_path / "other"
    other.mkdir()
    shuffled.rename(other / "records.parquet")
    assert snapshot_digest(other) == d1
    # One cent changed: another digest.
    con.execute(
        f"COPY (SELECT * REPLACE (CASE WHEN row_number() OVER () = 7 THEN gross_cents + 1 "
        f"ELSE gross_cents END AS gross_cents) FROM read_parquet('{other / 'records.parquet'}')) "
        f"TO '{tmp_path / 'changed.parquet'}' (FORMAT parquet)"
    )
    con.close()
    (tmp_path / "changed.parquet").replace(other / "records.parquet")
    assert snapshot_digest(other) != d1
    cache = tmp_path / "cache.json"
    assert cached_snapshot_digest(first, cache) == d1
    assert cached_snapshot_digest(first, cache) == d1 and first.name in cache.read_text()


def test_not_a_snapshot(tmp_path: Path) -> None:
    from uwv_server.enclave.errors import EnclaveError

    with pytest.raises(EnclaveError, match="not a polis snapshot"):
        snapshot_digest(tmp_path)
