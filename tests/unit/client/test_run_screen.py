"""``run_screen`` on the in-memory transport: UWV's real services in process, no sockets.

Masked, strict and compute-to-data batches agree with the plaintext oracle; an interrupted
batch resumes without deciding a household twice; chunks and households UWV refuses end up
``rejected`` with UWV's reason; a journal that cannot be written is one clear error.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.he.backend import SecretMaskedContext
from shared.he.keysets import StrictKeyFamily
from shared.models import Period
from shared.oracle import oracle_decisions
from svb_client.households import read_households
from svb_client.journal import JournalError
from svb_client.pipeline import ScreenJob, run_screen
from svb_client.wire import BatchOpen, ChunkAnswer, EncryptedChunk
from svb_client.wire.memory import InMemoryTransport
from tests.conftest import AIO_RULE
from uwv_server.budget import Refusal
from uwv_server.contexts import ContextRegistry
from uwv_server.he_rules import PinnedRules
from uwv_server.service import NoBudget, ScreeningService
from uwv_server.store import Snapshot, import_polis
from uwv_server.synth import generate

PERIOD = Period.parse("2025-01..2025-12")
HOUSEHOLDS = 200
CHUNK = 64


@dataclass(frozen=True)
class Data:
    store: Path
    households: Path
    expected: dict[str, bool]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    tmp = tmp_path_factory.mktemp("screen-data")
    generate(HOUSEHOLDS, PERIOD, tmp / "synth", seed=11)
    import_polis(tmp / "synth" / "polis.parquet", tmp / "store")
    households = tmp / "synth" / "households.parquet"
    records = Snapshot.open_current(tmp / "store").directory / "records.parquet"
    expected = oracle_decisions(records, read_households(households).households, PERIOD)
    assert 0 < sum(expected.values()) < len(expected)
    return Data(tmp / "store", households, expected)


class RefuseFirstSlot(NoBudget):
    """A budget that refuses the first household of every chunk (and charges nobody)."""

    def charge(self, **kw: object) -> dict[int, Refusal]:
        return {0: Refusal("budget", "budget of a member spent for 2025")}


@pytest.fixture
def uwv(data: Data, tmp_path: Path) -> Iterator[ScreeningService]:
    service = ScreeningService(
        Snapshot.open_current(data.store),
        ContextRegistry(tmp_path / "contexts"),
        rules=PinnedRules.from_files([AIO_RULE]),
    )
    yield service
    service.contexts.close()


def _job(data: Data, tmp: Path, secret: object, transport: object, **kw: object) -> ScreenJob:
    mode = "strict" if isinstance(secret, StrictKeyFamily) else "masked"
    fields: dict[str, object] = {
        "households": data.households,
        "server": "in-memory",
        "period": PERIOD,
        "out": tmp / "out.csv",
        "journal": tmp / "journal.sqlite",
        "secret": secret,
        "mode": mode,
        "rule": AIO_RULE,
        "chunk_size": CHUNK,
        "progress": False,
        "transport": transport,
    }
    fields.update(kw)
    return ScreenJob(**fields)  # type: ignore[arg-type]


def _outreach(path: Path) -> dict[str, tuple[str, str]]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    ids = [r["household_id"] for r in rows]
    assert len(ids) == len(set(ids)), "a household appears twice in the outreach file"
    return {r["household_id"]: (r["decision"], r["reason"]) for r in rows}


def _agrees(out: Path, expected: dict[str, bool]) -> dict[str, tuple[str, str]]:
    got = _outreach(out)
    decided = {h: d == "eligible" for h, (d, _) in got.items() if d != "rejected"}
    assert decided == {h: expected[h] for h in decided}
    return got


def test_masked_batch_agrees_with_the_oracle(
    data: Data, tmp_path: Path, uwv: ScreeningService, secret_context: SecretMaskedContext
) -> None:
    transport = InMemoryTransport(uwv)
    summary = run_screen(_job(data, tmp_path, secret_context, transport))
    got = _agrees(tmp_path / "out.csv", data.expected)
    assert set(data.expected) <= set(got)
    assert summary.screened == len(data.expected) and summary.context_uploaded
    assert summary.bytes_sent > 0 and summary.bytes_received > 0
    assert not transport.closed  # a transport passed in is the caller's to close
    again = run_screen(_job(data, tmp_path, secret_context, transport))
    assert again.resumed_chunks == -(-len(data.expected) // CHUNK) and not again.context_uploaded


def test_strict_batch_agrees_with_the_oracle(
    data: Data, tmp_path: Path, uwv: ScreeningService, strict_family_small: StrictKeyFamily
) -> None:
    """A strict client that waits for each answer before sending the next chunk."""
    job = _job(data, tmp_path, strict_family_small, InMemoryTransport(uwv), in_flight=1)
    summary = run_screen(job)
    _agrees(tmp_path / "out.csv", data.expected)
    assert summary.screened == len(data.expected) and summary.mode == "strict"


class Interrupted(Exception):
    pass


def test_an_interrupted_batch_resumes_without_deciding_twice(
    data: Data, tmp_path: Path, uwv: ScreeningService, secret_context: SecretMaskedContext
) -> None:
    recorded: list[int] = []

    def stop_after_two(index: int) -> None:
        recorded.append(index)
        if len(recorded) == 2:
            raise Interrupted

    transport = InMemoryTransport(uwv)
    with pytest.raises(Interrupted):
        run_screen(
            _job(data, tmp_path, secret_context, transport, on_chunk_recorded=stop_after_two)
        )
    assert not (tmp_path / "out.csv").exists()
    summary = run_screen(
        _job(data, tmp_path, secret_context, transport, on_chunk_recorded=recorded.append)
    )
    assert summary.resumed_chunks == 2
    assert sorted(recorded) == list(range(-(-len(data.expected) // CHUNK)))  # each chunk once
    _agrees(tmp_path / "out.csv", data.expected)


class BreakChunk:
    """Wraps a transport and sends chunk 1 with a BSN that fails the elfproef."""

    def __init__(self, inner: InMemoryTransport) -> None:
        self.inner = inner
        self.stats = inner.stats

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def screen(
        self, header: BatchOpen, chunks: Iterable[EncryptedChunk], deadline_s: float | None
    ) -> Iterator[ChunkAnswer]:
        def broken() -> Iterator[EncryptedChunk]:
            for chunk in chunks:
                if chunk.index == 1:
                    bsns = chunk.member_bsns.copy()
                    bsns[0] = 123456789
                    chunk = replace(chunk, member_bsns=bsns)
                yield chunk

        return self.inner.screen(header, broken(), deadline_s)


def test_refused_chunks_and_households_are_rejected_with_uwvs_reason(
    data: Data, tmp_path: Path, secret_context: SecretMaskedContext
) -> None:
    service = ScreeningService(
        Snapshot.open_current(data.store),
        ContextRegistry(tmp_path / "contexts"),
        budget=RefuseFirstSlot(),
        rules=PinnedRules.from_files([AIO_RULE]),
    )
    try:
        summary = run_screen(
            _job(data, tmp_path, secret_context, BreakChunk(InMemoryTransport(service)))
        )
    finally:
        service.contexts.close()
    got = _agrees(tmp_path / "out.csv", data.expected)
    batch = read_households(data.households)
    chunk1 = batch.household_ids[CHUNK : 2 * CHUNK]
    for hid in chunk1:
        decision, reason = got[hid]
        assert decision == "rejected" and "refused by UWV" in reason
        assert "123456789 is not a valid BSN" in reason
    firsts = batch.household_ids[0::CHUNK]
    for hid in firsts:
        if hid not in chunk1:
            assert got[hid] == ("rejected", "refused by UWV: budget of a member spent for 2025")
    decided = [h for h, (d, _) in got.items() if d != "rejected"]
    assert len(decided) == len(data.expected) - len(chunk1) - (len(firsts) - 1)
    assert summary.rejected == len(got) - len(decided)


def test_a_journal_that_cannot_be_written_is_one_clear_error(
    data: Data, tmp_path: Path, uwv: ScreeningService, secret_context: SecretMaskedContext
) -> None:
    folder = tmp_path / "journal-is-a-folder"
    folder.mkdir()
    job = _job(data, tmp_path, secret_context, InMemoryTransport(uwv), journal=folder)
    with pytest.raises(JournalError, match="journal-is-a-folder"):
        run_screen(job)


def test_thresholds_per_chunk_are_sent_once_in_order(
    data: Data, tmp_path: Path, uwv: ScreeningService, secret_context: SecretMaskedContext
) -> None:
    seen: list[int] = []

    class Watch(BreakChunk):
        def screen(
            self, header: BatchOpen, chunks: Iterable[EncryptedChunk], deadline_s: float | None
        ) -> Iterator[ChunkAnswer]:
            def watched() -> Iterator[EncryptedChunk]:
                for chunk in chunks:
                    seen.append(chunk.index)
                    assert np.all(chunk.member_counts >= 1)
                    yield chunk

            return self.inner.screen(header, watched(), deadline_s)

    run_screen(_job(data, tmp_path, secret_context, Watch(InMemoryTransport(uwv))))
    assert seen == list(range(-(-len(data.expected) // CHUNK)))


def test_the_requester_is_left_to_the_certificate_over_mutual_tls(tmp_path: Path) -> None:
    from shared.client_channel import ChannelSecurity
    from svb_client.pipeline.run import PLAINTEXT_REQUESTER, _requester

    base = ScreenJob(
        households=tmp_path / "h.csv",
        period=PERIOD,
        out=tmp_path / "o.csv",
        journal=tmp_path / "j.sqlite",
        security=ChannelSecurity.mutual_tls(tmp_path / "pki-svb", b"passphrase"),
    )
    assert _requester(base) == ""  # UWV takes the identity from SVB's certificate
    assert _requester(replace(base, security=ChannelSecurity.unsafe_plaintext())) == (
        PLAINTEXT_REQUESTER
    )
    assert _requester(replace(base, requester="SVB batch-7")) == "SVB batch-7"


def test_a_crash_while_planning_leaves_no_plan_and_no_working_files(
    data: Data,
    tmp_path: Path,
    uwv: ScreeningService,
    secret_context: SecretMaskedContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The plan is journalled a chunk at a time, but in one transaction: a crash half-way
    leaves no chunk behind (and the validation's working folder is removed), so the rerun
    plans the whole batch once."""
    import svb_client.pipeline.he as he

    real = he.plan_chunk

    def crash_at_two(*args: Any) -> Any:
        if args[3] == 2:
            raise Interrupted
        return real(*args)

    monkeypatch.setattr(he, "plan_chunk", crash_at_two)
    transport = InMemoryTransport(uwv)
    with pytest.raises(Interrupted):
        run_screen(_job(data, tmp_path, secret_context, transport))
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".households"))
    assert leftovers == []
    monkeypatch.setattr(he, "plan_chunk", real)
    recorded: list[int] = []
    summary = run_screen(
        _job(data, tmp_path, secret_context, transport, on_chunk_recorded=recorded.append)
    )
    assert summary.resumed_chunks == 0
    assert recorded == list(range(-(-len(data.expected) // CHUNK)))
    _agrees(tmp_path / "out.csv", data.expected)
