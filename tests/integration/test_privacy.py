"""What each party sees, checked on a real run over gRPC.

UWV must see only: which BSNs were asked about (grouped by household), the period, the rule's
digest and income weights, and ciphertexts it cannot open. SVB must see only one decision per
household. (What SVB's decrypted values still reveal in masked mode is measured by the leakage
tests of shared/he.)
"""

from __future__ import annotations

import csv
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared._proto.eligibility.v2 import eligibility_pb2 as pb
from shared.client_channel import ChannelSecurity
from shared.he.backend import SecretMaskedContext
from shared.models import Period
from svb_client.pipeline import ScreenJob, run_screen
from tests.conftest import AIO_RULE
from uwv_server.grpc.screening import ScreeningServicer
from uwv_server.store import import_polis
from uwv_server.synth import generate

PERIOD = Period.parse("2025-01..2025-12")
HEADER_FIELDS = {
    "batch_id",
    "requester",
    "context_sha256",
    "mode",
    "period",
    "rule_digest",
    "chunk_count",
    "income_weights",
}
CHUNK_FIELDS = {"index", "member_counts", "member_bsns", "ciphertexts"}


@pytest.fixture
def recorded_run(
    tmp_path: Path,
    start_server: Any,
    secret_context: SecretMaskedContext,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> Any:
    """Run a batch while recording every request message the server receives."""
    received: list[pb.ScreenRequest] = []
    original = ScreeningServicer.Screen

    async def recording(
        self: ScreeningServicer, it: AsyncIterator[pb.ScreenRequest], ctx: Any
    ) -> AsyncIterator[pb.ScreenResponse]:
        async def tap() -> AsyncIterator[pb.ScreenRequest]:
            async for message in it:
                received.append(message)
                yield message

        async for response in original(self, tap(), ctx):
            yield response

    monkeypatch.setattr(ScreeningServicer, "Screen", recording)
    synth = generate(1500, PERIOD, tmp_path / "data", seed=9)
    import_polis(synth.polis_path, tmp_path / "store")
    server = start_server(tmp_path / "store")
    caplog.set_level(logging.DEBUG, logger="uwv_server")
    run_screen(
        ScreenJob(
            security=ChannelSecurity.unsafe_plaintext(),
            households=synth.households_path,
            server=server.target,
            period=PERIOD,
            out=tmp_path / "out.csv",
            journal=tmp_path / "j.sqlite",
            secret=secret_context,
            progress=False,
            rule=AIO_RULE,
            chunk_size=500,
        )
    )
    return received, server, synth, tmp_path / "out.csv", caplog


def test_uwv_receives_only_allowed_fields(recorded_run: Any) -> None:
    received, *_ = recorded_run
    assert received[0].WhichOneof("item") == "header"
    assert {f.name for f, _ in received[0].header.ListFields()} <= HEADER_FIELDS
    chunks = [m.chunk for m in received[1:]]
    assert len(chunks) == 3
    for chunk in chunks:
        fields = {f.name for f, _ in chunk.ListFields()}
        assert CHUNK_FIELDS - {"index"} <= fields <= CHUNK_FIELDS  # index 0 is proto3's default
        assert len(chunk.ciphertexts) == 1


def test_uwv_cannot_open_what_it_receives(
    recorded_run: Any, secret_context: SecretMaskedContext
) -> None:
    received, server, *_ = recorded_run
    ciphertext = received[1].chunk.ciphertexts[0]
    context = server.service.contexts.get(received[0].header.context_sha256)
    assert context.holds_secret_key is False
    # The server's context can evaluate but has no key to decrypt with.
    assert not hasattr(context, "decrypt")
    # SVB's key opens it: the thresholds are in there, in the clear for SVB only.
    assert len(secret_context.decrypt(ciphertext)) == secret_context.params.slots


def test_uwv_log_names_no_bsn(recorded_run: Any) -> None:
    received, _, _, _, caplog = recorded_run
    bsns = {f"{b:09d}" for m in received[1:] for b in m.chunk.member_bsns}
    text = "\n".join(record.getMessage() for record in caplog.get_records("setup"))
    assert "batch" in text
    assert not any(b in text for b in bsns)


def test_svb_output_holds_one_decision_per_household_and_nothing_else(recorded_run: Any) -> None:
    _, _, synth, out, _ = recorded_run
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert set(rows[0]) == {"household_id", "decision", "reason"}
    assert len(rows) == synth.households
    assert {r["decision"] for r in rows} <= {"eligible", "not_eligible", "rejected"}
    assert all(r["reason"] == "" for r in rows if r["decision"] != "rejected")


def test_unknown_bsn_is_indistinguishable_from_no_income(
    tmp_path: Path, start_server: Any, secret_context: SecretMaskedContext
) -> None:
    """A BSN UWV has never seen is screened exactly like a known person without income."""
    from shared.he.masked import decide
    from tests.conftest import HOUSEHOLD_COLUMNS, POLIS_COLUMNS, bsn_from, write_csv

    known, unknown = bsn_from(1), bsn_from(2)
    # `known` has records, but only outside the period
    polis = write_csv(tmp_path / "p.csv", POLIS_COLUMNS, [[known, 1, "wage", "2023-01", 5, 1]])
    import_polis(polis, tmp_path / "store")
    server = start_server(tmp_path / "store")
    hh = write_csv(
        tmp_path / "hh.csv",
        HOUSEHOLD_COLUMNS,
        [["a", known, "single", 0], ["b", unknown, "single", 0]],
    )
    run_screen(
        ScreenJob(
            security=ChannelSecurity.unsafe_plaintext(),
            households=hh,
            server=server.target,
            period=PERIOD,
            out=tmp_path / "o.csv",
            journal=tmp_path / "j.sqlite",
            secret=secret_context,
            progress=False,
            rule=AIO_RULE,
        )
    )
    with (tmp_path / "o.csv").open(newline="") as f:
        decisions = {r["household_id"]: (r["decision"], r["reason"]) for r in csv.DictReader(f)}
    assert decisions == {"a": ("eligible", ""), "b": ("eligible", "")}
    assert decide(np.array([1]), secret_context.params).valid.all()
