"""SVB's key at rest and batch journal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.chunk import HouseholdChunk
from shared.errors import CryptoError
from shared.he.backend import SecretMaskedContext
from svb_client.journal import Journal, JournalError, PendingChunk
from svb_client.keys import load_or_create, load_secret_key, read_passphrase, save_secret_key
from tests.conftest import bsn_from


def test_key_roundtrip_and_refusals(tmp_path: Path, secret_context: SecretMaskedContext) -> None:
    path = tmp_path / "k.enc"
    save_secret_key(secret_context, path, b"correct horse")
    assert path.stat().st_mode & 0o777 == 0o600
    assert b"SVBKEY1" in path.read_bytes()[:8]
    loaded = load_secret_key(path, b"correct horse")
    ct = secret_context.encrypt(np.array([15, -3]))
    assert loaded.decrypt(ct)[:2].tolist() == [15, -3]
    with pytest.raises(CryptoError, match="wrong passphrase"):
        load_secret_key(path, b"wrong horse")
    data = bytearray(path.read_bytes())
    data[-5] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(CryptoError, match="changed after it was written"):
        load_secret_key(path, b"correct horse")
    with pytest.raises(CryptoError, match="at least 8"):
        save_secret_key(secret_context, tmp_path / "x", b"short")
    with pytest.raises(CryptoError, match="not an SVB key"):
        (tmp_path / "y").write_bytes(b"hello")
        load_secret_key(tmp_path / "y", b"whatever1")


def test_secret_never_stored_in_clear(tmp_path: Path, secret_context: SecretMaskedContext) -> None:
    path = tmp_path / "k.enc"
    save_secret_key(secret_context, path, b"correct horse")
    secret = secret_context.secret_bytes()
    assert secret[-300:-236] not in path.read_bytes()


def test_load_or_create(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.he.params import MASKED_DEFAULT

    _, created = load_or_create(tmp_path / "k", b"passphrase", MASKED_DEFAULT.name)
    _, again = load_or_create(tmp_path / "k", b"passphrase", MASKED_DEFAULT.name)
    assert (created, again) == (True, False)
    monkeypatch.delenv("SVB_KEY_PASSPHRASE", raising=False)
    with pytest.raises(CryptoError, match="SVB_KEY_PASSPHRASE"):
        read_passphrase(None)
    monkeypatch.setenv("SVB_KEY_PASSPHRASE", "from-env")
    assert read_passphrase(None) == b"from-env"


def _chunk(i: int) -> PendingChunk:
    return PendingChunk(
        index=i,
        household_ids=[f"h{i}a", f"h{i}b"],
        households=HouseholdChunk(
            np.array([1, 2]), np.array([int(bsn_from(3 * i + k)) for k in range(3)])
        ),
        thresholds=np.array([10, -10]),
    )


def test_journal_records_each_chunk_exactly_once(tmp_path: Path) -> None:
    identity = {"input_sha256": "x", "period": "2025-01..2025-12"}
    journal = Journal(tmp_path / "j.sqlite")
    assert journal.matches_or_empty(identity) is False
    journal.create({**identity, "batch_id": "b1"}, [_chunk(0), _chunk(1)], [("bad", "reason")])
    journal.record(0, np.array([1, 0], dtype=np.int8), {})
    with pytest.raises(JournalError, match="not recorded twice"):
        journal.record(0, np.array([1, 0], dtype=np.int8), {})
    journal.close()

    reopened = Journal(tmp_path / "j.sqlite")
    assert reopened.matches_or_empty(identity) is True
    assert [c.index for c in reopened.pending()] == [1]
    assert reopened.counts() == (2, 1)
    with pytest.raises(JournalError, match="differs in period"):
        reopened.matches_or_empty({**identity, "period": "2024-01..2024-12"})
    reopened.record(1, np.array([0, 1], dtype=np.int8), {1: "refused by UWV: budget"})
    assert list(reopened.results()) == [
        ("h0a", "eligible", ""),
        ("h0b", "not_eligible", ""),
        ("h1a", "not_eligible", ""),
        ("h1b", "rejected", "refused by UWV: budget"),
        ("bad", "rejected", "reason"),
    ]


def test_journal_keeps_the_cost_sharers_and_opens_one_written_before_the_column(
    tmp_path: Path,
) -> None:
    import sqlite3

    households = HouseholdChunk(
        np.array([1, 1]),
        np.array([int(bsn_from(1)), int(bsn_from(2))]),
        np.array([False, False]),
        np.array([0, 0]),
        np.array([0, 2]),
    )
    journal = Journal(tmp_path / "j.sqlite")
    journal.create({"b": "1"}, [PendingChunk(0, ["a", "b"], households, salt=b"s")], [])
    journal.close()
    (pending,) = Journal(tmp_path / "j.sqlite").pending()
    assert pending.households.cost_sharers is not None
    assert pending.households.cost_sharers.tolist() == [0, 2]
    # a journal from before the column (an enclave batch had no cost-sharers then)
    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as db:
        db.executescript(
            "CREATE TABLE chunks (idx INTEGER PRIMARY KEY, household_ids TEXT NOT NULL, "
            "member_counts BLOB NOT NULL, member_bsns BLOB NOT NULL, is_couple BLOB, "
            "known_income BLOB, thresholds BLOB, salt BLOB NOT NULL DEFAULT x'', "
            "done INTEGER NOT NULL DEFAULT 0, decisions BLOB, slot_errors TEXT, receipt BLOB, "
            "receipt_digest TEXT);"
        )
        db.execute(
            "INSERT INTO chunks (idx, household_ids, member_counts, member_bsns) "
            "VALUES (0, 'a', ?, ?)",
            (np.array([1], "<i8").tobytes(), np.array([int(bsn_from(1))], "<i8").tobytes()),
        )
    (pending,) = Journal(old).pending()
    assert pending.households.cost_sharers is None
