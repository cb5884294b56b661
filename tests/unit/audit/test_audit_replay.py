"""The replay hook, with a fake recompute."""

from __future__ import annotations

import pytest
from audit_testkit import make_entry

from shared.audit import BatchSalt, Recomputed, ReplayError, RunEntry, digest_result, replay
from shared.errors import InputError


def test_replay_that_reproduces_the_result() -> None:
    salt = BatchSalt(bytes([4]) * 32)
    entry = make_entry(4, salt)

    def recompute(e: RunEntry) -> Recomputed:
        return Recomputed(result_digest=digest_result(salt, [("h4", False)]))

    report = replay(entry, recompute, index=4)
    assert report.matches
    assert report.describe().startswith("OK: replay of entry 4 (run run-000004)")


def test_replay_that_differs_says_what() -> None:
    salt = BatchSalt(bytes([4]) * 32)
    entry = make_entry(4, salt)

    def recompute(e: RunEntry) -> Recomputed:
        return Recomputed(
            result_digest=digest_result(salt, [("h4", True)]),  # the decision flipped
            snapshot_digest="0" * 64,
        )

    report = replay(entry, recompute)
    assert not report.matches
    assert [d.field for d in report.differences] == ["result_digest", "snapshot_digest"]
    text = report.describe()
    assert text.startswith("DIFFERS") and entry.result_digest in text and "recorded None" in text


def test_failing_recompute_is_a_replay_error() -> None:
    def broken(e: RunEntry) -> Recomputed:
        raise InputError("snapshot 2025-01 is gone")

    with pytest.raises(ReplayError, match="snapshot 2025-01 is gone"):
        replay(make_entry(1), broken)
    with pytest.raises(ReplayError):
        replay(make_entry(1), lambda e: "not a Recomputed")  # type: ignore[arg-type,return-value]
