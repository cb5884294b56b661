"""Strict mode end to end over gRPC: exactly one bit per household, equal to the oracle."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import grpc
import pytest

from shared._proto.eligibility.v2 import eligibility_pb2 as pb
from shared._proto.eligibility.v2 import eligibility_pb2_grpc as pb_grpc
from shared.digests import sha256_hex
from shared.errors import Error
from shared.he.backend import PublicBfvContext, SecretMaskedContext
from shared.models import Period
from shared.oracle import oracle_decisions
from shared.rules import digest, parse_file
from svb_client.households import read_households
from svb_client.pipeline import ScreenJob, run_screen
from tests.conftest import AIO_RULE, accept_strict_over_grpc
from tests.integration.test_screen_grpc import _edge_case_data, _outreach
from tests.integration.test_screen_grpc import _job as masked_job
from uwv_server.store import Snapshot, import_polis
from uwv_server.synth import generate

PERIOD = Period.parse("2025-01..2025-12")


def _job(hh: Path, target: str, tmp_path: Path, secret: Any, **kw: Any) -> ScreenJob:
    return masked_job(hh, target, tmp_path, secret, mode="strict", **kw)


def _edge_case_run(tmp_path: Path, start_server: Any, secret: Any) -> Any:
    """The online edge cases in strict mode over a real server: decisions as the oracle's."""
    polis, hh, expected = _edge_case_data(tmp_path)
    import_polis(polis, tmp_path / "store")
    server = start_server(tmp_path / "store")
    summary = run_screen(_job(hh, server.target, tmp_path, secret))
    got = {h: d == "eligible" for h, (d, _) in _outreach(tmp_path / "out.csv").items()}
    assert got == expected
    assert summary.rejected == 0
    return summary


def test_strict_edge_cases_match_the_oracle(
    tmp_path: Path, start_server: Any, strict_family_small: Any
) -> None:
    summary = _edge_case_run(tmp_path, start_server, strict_family_small)
    # strict uploads dozens of ciphertexts per chunk, and gets back exactly one
    assert summary.bytes_sent > 10 * summary.bytes_received


def test_strict_synthetic_batch_over_several_chunks(
    tmp_path: Path, start_server: Any, strict_secret_small: Any, strict_family_small: Any
) -> None:
    synth = generate(2500, PERIOD, tmp_path / "data", seed=13)
    import_polis(synth.polis_path, tmp_path / "store")
    server = start_server(tmp_path / "store")
    run_screen(
        _job(synth.households_path, server.target, tmp_path, strict_family_small, chunk_size=1000)
    )
    batch = read_households(synth.households_path)
    records = Snapshot.open_current(tmp_path / "store").directory / "records.parquet"
    expected = oracle_decisions(records, batch.households, PERIOD)
    got = {h: d == "eligible" for h, (d, _) in _outreach(tmp_path / "out.csv").items()}
    assert got == expected
    context = server.service.contexts.get(sha256_hex(strict_secret_small.public_bytes()))
    stored = PublicBfvContext(context.canonical_bytes(), strict_secret_small.params.name)
    assert stored.holds_secret_key is False


def test_mode_and_key_must_match(
    tmp_path: Path, strict_secret_small: Any, secret_context: SecretMaskedContext
) -> None:
    _, hh, _ = _edge_case_data(tmp_path)
    with pytest.raises(Error, match="needs a strict key"):
        run_screen(_job(hh, "127.0.0.1:1", tmp_path, secret_context))


def test_mixing_modes_within_a_batch_is_refused(
    tmp_path: Path,
    start_server: Any,
    strict_secret_small: Any,
    strict_family_small: Any,
    secret_context: SecretMaskedContext,
    channel_to: Any,
) -> None:
    synth = generate(50, PERIOD, tmp_path / "data", seed=1)
    import_polis(synth.polis_path, tmp_path / "store")
    server = start_server(tmp_path / "store")
    stub = pb_grpc.ScreeningServiceStub(channel_to(server.target))
    masked_ctx = secret_context.public_bytes()
    stub.UploadContext(
        pb.UploadContextRequest(parameter_set=secret_context.params.name, context=masked_ctx)
    )
    header = pb.BatchHeader(
        batch_id="x",
        context_sha256=sha256_hex(masked_ctx),
        mode=pb.MODE_STRICT,
        period=str(PERIOD),
        rule_digest=digest(parse_file(AIO_RULE)),
    )
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Screen(iter([pb.ScreenRequest(header=header)])))
    assert "is for masked mode, the batch is strict" in info.value.details()  # type: ignore[attr-defined]
    # a masked-mode chunk sent into a strict batch is refused for its ciphertext count
    accept_strict_over_grpc(stub, strict_family_small)
    header.context_sha256 = sha256_hex(strict_secret_small.public_bytes())
    chunk = pb.Chunk(
        index=0,
        member_counts=[1],
        member_bsns=[111222333],
        ciphertexts=[secret_context.encrypt(__import__("numpy").zeros(1, dtype="int64"))],
    )
    responses = list(
        stub.Screen(iter([pb.ScreenRequest(header=header), pb.ScreenRequest(chunk=chunk)]))
    )
    assert "strict mode takes" in responses[0].result.error.message


@pytest.mark.slow
def test_strict_default_parameters_full_size(tmp_path: Path, start_server: Any) -> None:
    """The production strict set (N=16384, noise flooding) over gRPC with a full chunk."""
    from shared.he.keysets import StrictKeyFamily
    from shared.he.params import STRICT_DEFAULT

    secret = StrictKeyFamily.generate(STRICT_DEFAULT)  # passes the server's key check (K=2)
    # exactly one full chunk: a partial last chunk uploads the same 39 ciphertexts for fewer
    # households, so per-household bytes are only at their best for full chunks
    synth = generate(STRICT_DEFAULT.slots, PERIOD, tmp_path / "data", seed=17)
    import_polis(synth.polis_path, tmp_path / "store")
    server = start_server(tmp_path / "store")
    summary = run_screen(_job(synth.households_path, server.target, tmp_path, secret))
    batch = read_households(synth.households_path)
    records = Snapshot.open_current(tmp_path / "store").directory / "records.parquet"
    expected = oracle_decisions(records, batch.households, PERIOD)
    with (tmp_path / "out.csv").open(newline="") as f:
        got = {r["household_id"]: r["decision"] == "eligible" for r in csv.DictReader(f)}
    assert got == expected
    assert summary.bytes_sent / summary.screened < 4096  # issue 3: at most 4 KB per household


def test_the_servers_own_process_never_parses_strict_keys_or_ciphertexts(
    tmp_path: Path, start_server: Any, strict_family_small: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Strict contexts and chunks are checked and evaluated in worker processes only: parsing
    them holds the GIL for up to a second, which the event loop answering health checks
    needs. Any parse in this (the server's) process fails the batch here."""
    from shared.he.backend import _tenseal

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a strict context was parsed in the server's process")

    monkeypatch.setattr(_tenseal.PublicBfvContext, "__init__", refuse)
    _edge_case_run(tmp_path, start_server, strict_family_small)
