"""The durable store and the typed log: proofs match the reference tree, damage is refused."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from audit_testkit import ORIGIN, make_entry

from shared.audit import (
    AuditError,
    AuditLog,
    LogService,
    MemoryTree,
    NoteSigner,
    SqliteLogStore,
    StorageError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    open_checkpoint,
    root_of,
    verify_consistency,
    verify_inclusion,
)


def _datas(n: int) -> list[bytes]:
    return [f"leaf-{i}".encode() for i in range(n)]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "log.sqlite"


def test_store_proofs_match_memory_tree(db: Path) -> None:
    datas = _datas(300)
    with SqliteLogStore(db, ORIGIN) as store:
        for start in range(0, 300, 41):
            store.append(datas[start : start + 41])
        tree = MemoryTree([leaf_hash(x) for x in datas])
        assert store.root == tree.root() == root_of([leaf_hash(x) for x in datas])
        for n in (1, 2, 3, 64, 65, 299, 300):
            for i in {0, n // 2, n - 1}:
                assert inclusion_proof(store, i, n) == inclusion_proof(tree, i, n)
            for m in {0, 1, n // 3, n - 1, n}:
                assert consistency_proof(store, m, n) == consistency_proof(tree, m, n)
    with SqliteLogStore(db, ORIGIN, check="full") as again:
        assert again.size == 300 and again.root == tree.root()
        again.append([b"more"])
        assert again.size == 301


def _tamper(db: Path, sql: str, *params: object) -> None:
    con = sqlite3.connect(db)
    con.execute(sql, params)
    con.commit()
    con.close()


@pytest.fixture
def filled(db: Path) -> Iterator[Path]:
    with SqliteLogStore(db, ORIGIN) as store:
        store.append(_datas(2000))
    yield db


def test_altered_recent_entry_is_refused_at_start(filled: Path) -> None:
    _tamper(filled, "UPDATE entries SET data = ? WHERE idx = 1999", b"forged")
    with pytest.raises(StorageError, match="entry 1999"):
        SqliteLogStore(filled, ORIGIN)


def test_altered_old_entry_is_found_by_full_check(filled: Path) -> None:
    _tamper(filled, "UPDATE entries SET data = ? WHERE idx = 3", b"forged")
    SqliteLogStore(filled, ORIGIN).close()  # outside the tail: start-up check passes
    with pytest.raises(StorageError, match="entry 3"):
        SqliteLogStore(filled, ORIGIN, check="full")
    with SqliteLogStore(filled, ORIGIN) as store, pytest.raises(StorageError):
        store.verify_integrity()


def test_altered_interior_node_is_found(filled: Path) -> None:
    _tamper(filled, "UPDATE nodes SET hash = ? WHERE id = ?", b"\x00" * 32, (3 << 50) | 5)
    with pytest.raises(StorageError):
        SqliteLogStore(filled, ORIGIN, check="full")


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM entries WHERE idx = 1999",
        "DELETE FROM nodes WHERE id = 1999",
        "UPDATE meta SET value = 1999 WHERE key = 'size'",
        "UPDATE meta SET value = zeroblob(32) WHERE key = 'root'",
        "INSERT INTO entries (idx, data) VALUES (2000, x'00')",
        "INSERT INTO nodes (id, hash) VALUES (2000, zeroblob(32))",
    ],
)
def test_truncated_or_extended_log_is_refused(filled: Path, sql: str) -> None:
    _tamper(filled, sql)
    with pytest.raises(StorageError):
        SqliteLogStore(filled, ORIGIN)


def test_garbage_and_cut_files_are_refused(tmp_path: Path, filled: Path) -> None:
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError):
        SqliteLogStore(garbage, ORIGIN)
    data = filled.read_bytes()
    cut = tmp_path / "cut.sqlite"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(StorageError):
        SqliteLogStore(cut, ORIGIN, check="full")


def test_wrong_origin_is_refused(filled: Path) -> None:
    with pytest.raises(StorageError, match="holds log"):
        SqliteLogStore(filled, "other/log")


def test_second_writer_is_detected(db: Path) -> None:
    a = SqliteLogStore(db, ORIGIN)
    b = SqliteLogStore(db, ORIGIN)
    a.append([b"x"])
    with pytest.raises(StorageError, match="another writer"):
        b.append([b"y"])
    assert b.size == 0  # the failed append changed nothing
    a.close()
    b.close()


def test_log_service_api(db: Path, log_signer: NoteSigner) -> None:
    clock = iter(datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=m) for m in range(100))
    log = AuditLog.open(db, ORIGIN)
    service = LogService(log, log_signer, lambda: next(clock))
    assert service.append([make_entry(i) for i in range(5)]) == range(0, 5)
    cp1_text = service.checkpoint()
    assert service.checkpoint() is cp1_text  # not re-signed while the tree did not grow
    service.append([make_entry(i) for i in range(5, 13)])
    cp2_text = service.checkpoint()
    cp1 = open_checkpoint(cp1_text, log_signer.verifier, origin=ORIGIN).checkpoint
    cp2 = open_checkpoint(cp2_text, log_signer.verifier, origin=ORIGIN).checkpoint
    assert (cp1.size, cp2.size) == (5, 13)
    assert cp2.signed_at == datetime(2025, 1, 1, 0, 1, tzinfo=UTC)
    for i in range(13):
        leaf = leaf_hash(service.entries(i, i + 1)[0])
        verify_inclusion(i, 13, leaf, service.inclusion_proof(i, 13), cp2.root_hash)
    verify_consistency(5, 13, service.consistency_proof(5, 13), cp1.root_hash, cp2.root_hash)
    assert log.entries(3, 4) == [make_entry(3)]
    assert log.root(5) == cp1.root_hash
    with pytest.raises(AuditError):
        service.entries(0, 20_000)
    with pytest.raises(AuditError):
        service.inclusion_proof(13, 13)
    with pytest.raises(AuditError):
        service.consistency_proof(5, 14)
    log.close()
