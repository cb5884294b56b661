"""End to end over real gRPC on localhost: SVB client → UWV server → one bit per household."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared._proto.eligibility.v2 import eligibility_pb2 as pb
from shared._proto.eligibility.v2 import eligibility_pb2_grpc as pb_grpc
from shared.client_channel import ChannelSecurity
from shared.digests import sha256_hex
from shared.he.backend import SecretMaskedContext
from shared.he.masked import encode_thresholds
from shared.he.params import MASKED_DEFAULT
from shared.models import Period
from shared.oracle import oracle_decisions
from shared.rules import digest as rule_digest_of
from shared.rules import parse_file
from svb_client.households import read_households
from svb_client.pipeline import ScreenJob, run_screen
from tests.conftest import AIO_RULE, HOUSEHOLD_COLUMNS, POLIS_COLUMNS, bsn_from, write_csv
from uwv_server.store import Snapshot, import_polis
from uwv_server.synth import generate

PERIOD = Period.parse("2025-01..2025-12")
SINGLE, COUPLE = 153021, 209498  # norms in force on 2025-12-31 (art. 22, text of 2025-07-01)


def _outreach(path: Path) -> dict[str, tuple[str, str]]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and list(rows[0]) == ["household_id", "decision", "reason"]
    ids = [r["household_id"] for r in rows]
    assert len(ids) == len(set(ids)), "a household appears twice in the outreach file"
    return {r["household_id"]: (r["decision"], r["reason"]) for r in rows}


def _edge_case_data(tmp_path: Path) -> tuple[Path, Path, dict[str, bool]]:
    """Households at, one cent below/above, one cent of monthly average around the threshold,
    with no records, with corrections, with one to three members."""
    polis: list[list[object]] = []
    households: list[list[object]] = []
    expected: dict[str, bool] = {}
    n = 12
    counter = iter(range(1000))

    def person(total: int, *, months: int = 12, correction: int = 0) -> str:
        bsn = bsn_from(next(counter))
        per_month, rest = divmod(total - correction, months)
        for m in range(months):
            gross = per_month + (rest if m == 0 else 0)
            polis.append([bsn, 1, "pension", f"2025-{m + 1:02d}", gross + 1000, 1000])
        if correction:
            polis.append([bsn, 1, "pension", "2025-06", correction - 50, -50])
        return bsn

    def household(
        hid: str, category: str, known: list[int], totals: list[int], eligible: bool, **kw: Any
    ) -> None:
        for k, t in zip(known, totals, strict=True):
            households.append(
                [hid, person(t, **kw) if t is not None else bsn_from(next(counter)), category, k]
            )
        expected[hid] = eligible

    k = 100_000
    threshold = n * (SINGLE - k)  # S < threshold is eligible
    household("at", "single", [k], [threshold], False)
    household("cent-below", "single", [k], [threshold - 1], True)
    household("cent-above", "single", [k], [threshold + 1], False)
    household("avg-cent-below", "single", [k], [threshold - n], True)
    household("avg-cent-above", "single", [k], [threshold + n], False)
    household("correction", "single", [k], [threshold - 1], True, correction=-30_000)
    household("correction-above", "single", [k], [threshold], False, correction=-5)
    household("few-months", "single", [k], [threshold - 1], True, months=3)
    # couple: known income is summed over the members' rows
    cthreshold = n * (COUPLE - 150_000)
    household("couple-at", "couple", [100_000, 50_000], [cthreshold - 500, 500], False)
    household("couple-below", "couple", [100_000, 50_000], [cthreshold - 501, 500], True)
    household("trio-below", "couple", [100_000, 50_000, 0], [cthreshold - 3, 1, 1], True)
    household("trio-above", "couple", [100_000, 50_000, 0], [cthreshold, 1, 1], False)
    # no records at all: income 0 < threshold
    households.append(["no-records", bsn_from(900), "single", 10_000])
    expected["no-records"] = True
    # known income above the norm: threshold negative, only negative income is below it
    household("negative-threshold", "single", [160_000], [0], False)
    polis_path = write_csv(tmp_path / "polis.csv", POLIS_COLUMNS, polis)
    hh_path = write_csv(tmp_path / "households.csv", HOUSEHOLD_COLUMNS, households)
    return polis_path, hh_path, expected


def _job(
    hh: Path, target: str, tmp_path: Path, secret: SecretMaskedContext, **kw: Any
) -> ScreenJob:
    return ScreenJob(
        security=ChannelSecurity.unsafe_plaintext(),
        households=hh,
        server=target,
        period=PERIOD,
        out=tmp_path / "out.csv",
        journal=tmp_path / "journal.sqlite",
        secret=secret,
        progress=False,
        rule=AIO_RULE,
        **kw,
    )


def test_edge_cases_match_the_oracle(
    tmp_path: Path, start_server: Any, secret_context: SecretMaskedContext
) -> None:
    polis, hh, expected = _edge_case_data(tmp_path)
    import_polis(polis, tmp_path / "store")
    server = start_server(tmp_path / "store")
    summary = run_screen(_job(hh, server.target, tmp_path, secret_context))
    out = _outreach(tmp_path / "out.csv")
    got = {hid: decision == "eligible" for hid, (decision, _) in out.items()}
    assert got == expected
    # the oracle (raw records, integer arithmetic) agrees with the hand-written expectations
    batch = read_households(hh)
    records = Snapshot.open_current(tmp_path / "store").directory / "records.parquet"
    assert oracle_decisions(records, batch.households, PERIOD) == expected
    assert summary.screened == len(expected) and summary.rejected == 0
    assert summary.bytes_sent > 0 and summary.bytes_received > 0


def test_synthetic_batch_with_rejects_matches_oracle(
    tmp_path: Path, start_server: Any, secret_context: SecretMaskedContext
) -> None:
    synth = generate(3000, PERIOD, tmp_path / "data", seed=11, fmt="csv")
    import_polis(synth.polis_path, tmp_path / "store")
    rows = list(csv.reader(synth.households_path.open()))
    rows[5][1] = "123456789"  # elfproef fails: its household is rejected, the rest goes on
    rows[9][2] = "widow"
    hh = write_csv(tmp_path / "hh.csv", rows[0], rows[1:])
    server = start_server(tmp_path / "store")
    summary = run_screen(_job(hh, server.target, tmp_path, secret_context, chunk_size=1000))
    out = _outreach(tmp_path / "out.csv")
    rejected = {h: r for h, (d, r) in out.items() if d == "rejected"}
    assert len(rejected) == 2 and summary.rejected == 2
    assert any("fails the elfproef" in r for r in rejected.values())
    batch = read_households(hh)
    records = Snapshot.open_current(tmp_path / "store").directory / "records.parquet"
    expected = oracle_decisions(records, batch.households, PERIOD)
    got = {h: d == "eligible" for h, (d, _) in out.items() if d != "rejected"}
    assert got == expected
    assert 0 < sum(expected.values()) < len(expected)
    # every contract the server holds is key-less
    registry = server.service.contexts
    digest = sha256_hex(secret_context.public_bytes())
    assert registry.get(digest).holds_secret_key is False
    stored = (tmp_path / "store" / "contexts" / f"{digest}.ctx").read_bytes()
    assert stored.endswith(secret_context.public_bytes())  # the public key, nothing more


@pytest.fixture
def wire(tmp_path: Path, start_server: Any, secret_context: SecretMaskedContext) -> Any:
    synth = generate(200, PERIOD, tmp_path / "data", seed=3)
    import_polis(synth.polis_path, tmp_path / "store")
    server = start_server(tmp_path / "store")
    channel = grpc.insecure_channel(server.target)
    stub = pb_grpc.ScreeningServiceStub(channel)
    public = secret_context.public_bytes()
    stub.UploadContext(pb.UploadContextRequest(parameter_set=MASKED_DEFAULT.name, context=public))
    yield stub, channel, sha256_hex(public)
    channel.close()


RULE_DIGEST = rule_digest_of(parse_file(AIO_RULE))


def _header(
    digest: str, period: str = "2025-01..2025-12", rule: str = RULE_DIGEST
) -> pb.ScreenRequest:
    return pb.ScreenRequest(
        header=pb.BatchHeader(
            batch_id="t",
            context_sha256=digest,
            mode=pb.MODE_MASKED,
            period=period,
            rule_digest=rule,
        )
    )


def _chunk(
    index: int,
    secret: SecretMaskedContext,
    bsns: list[int],
    counts: list[int],
    ciphertext: bytes | None = None,
) -> pb.ScreenRequest:
    ct = (
        ciphertext
        if ciphertext is not None
        else secret.encrypt(encode_thresholds(np.zeros(len(counts), dtype=np.int64), 12))
    )
    return pb.ScreenRequest(
        chunk=pb.Chunk(index=index, member_counts=counts, member_bsns=bsns, ciphertexts=[ct])
    )


def _error_detail(exc: grpc.RpcError) -> pb.ErrorDetail:
    for key, value in exc.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == "eligibility-error-bin":
            return pb.ErrorDetail.FromString(value)
    raise AssertionError("no error detail in trailing metadata")


def test_health_and_reflection(wire: Any) -> None:
    _, channel, _ = wire
    health = health_pb2_grpc.HealthStub(channel)
    reply = health.Check(health_pb2.HealthCheckRequest(service="eligibility.v2.ScreeningService"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert "eligibility.v2.ScreeningService" in names


def test_unknown_context_is_a_precondition_failure(wire: Any) -> None:
    stub, _, _ = wire
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Screen(iter([_header("ab" * 32)])))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
    assert _error_detail(info.value).code == pb.ERROR_CODE_UNKNOWN_CONTEXT


def test_context_with_secret_key_is_refused_over_the_wire(
    wire: Any, secret_context: SecretMaskedContext
) -> None:
    stub, _, _ = wire
    with pytest.raises(grpc.RpcError) as info:
        stub.UploadContext(
            pb.UploadContextRequest(
                parameter_set=MASKED_DEFAULT.name, context=secret_context.secret_bytes()
            )
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "secret key" in info.value.details()  # type: ignore[attr-defined]


@pytest.mark.parametrize("period", ["2025-13..2025-12", "garbage", "2025-06..2025-01"])
def test_malformed_period_is_refused(wire: Any, period: str) -> None:
    stub, _, digest = wire
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Screen(iter([_header(digest, period)])))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert _error_detail(info.value).field == "header"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def test_client_income_weights_are_refused(wire: Any) -> None:
    """Field 7 (the client's income weights) is gone from the contract; a hand-made header
    that still carries it is refused, so an old or dishonest client cannot choose the income."""
    stub, _, digest = wire
    raw = _header(digest).SerializeToString()
    # ScreenRequest.header (field 1, length-delimited) holding BatchHeader + field 7 bytes
    header = pb.ScreenRequest.FromString(raw).header.SerializeToString()
    extra = bytes([7 << 3 | 2, 8]) + bytes([10, 4]) + b"wage" + bytes([16, 2])
    body = header + extra
    forged = bytes([1 << 3 | 2]) + _varint(len(body)) + body
    channel_call = stub.Screen
    with pytest.raises(grpc.RpcError) as info:
        list(channel_call(iter([pb.ScreenRequest.FromString(forged)])))
    assert "field 7" in info.value.details()  # type: ignore[attr-defined]


def test_unapproved_rule_is_refused(wire: Any) -> None:
    stub, _, digest = wire
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Screen(iter([_header(digest, rule="ab" * 32)])))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
    assert _error_detail(info.value).code == pb.ERROR_CODE_RULE_NOT_APPROVED


def test_missing_header_is_refused(wire: Any, secret_context: SecretMaskedContext) -> None:
    stub, _, _ = wire
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Screen(iter([_chunk(0, secret_context, [111222333], [1])])))
    assert "header" in info.value.details()  # type: ignore[attr-defined]


def test_bad_chunks_fail_alone_and_the_stream_goes_on(
    wire: Any, secret_context: SecretMaskedContext
) -> None:
    stub, _, digest = wire
    good = int(bsn_from(1))
    ct = secret_context.encrypt(np.zeros(1, dtype=np.int64))
    requests = [
        _header(digest),
        _chunk(0, secret_context, [good, 123456789], [2]),  # bad BSN, slot 0 member 1
        _chunk(1, secret_context, [good], [1], ciphertext=ct[:100]),  # corrupt ciphertext
        _chunk(2, secret_context, [good] * 7, [7]),  # oversized household
        _chunk(3, secret_context, [good], [2]),  # counts do not add up
        _chunk(4, secret_context, [good], [1], ciphertext=b"\x00" * (5 << 20)),  # oversized
        _chunk(5, secret_context, [good], [1]),  # fine
    ]
    responses = list(stub.Screen(iter(requests)))
    results = [r.result for r in responses if r.WhichOneof("item") == "result"]
    assert [r.index for r in results] == [0, 1, 2, 3, 4, 5]
    assert results[0].error.code == pb.ERROR_CODE_INVALID_BSN
    assert (results[0].error.slot, results[0].error.member) == (0, 1)
    assert "123456789 is not a valid BSN" in results[0].error.message
    assert results[1].error.code == pb.ERROR_CODE_INVALID_CIPHERTEXT
    assert "7 members" in results[2].error.message
    assert "add up" in results[3].error.message
    assert results[4].error.code == pb.ERROR_CODE_INVALID_CIPHERTEXT
    assert not results[5].HasField("error") and len(results[5].ciphertexts) == 1
    assert responses[-1].summary.failed_chunks == 5
    # the server is still up and serving
    assert stub.GetServerInfo(pb.GetServerInfoRequest()).server_version


def test_too_many_households_for_one_ciphertext(
    wire: Any, secret_context: SecretMaskedContext
) -> None:
    stub, _, digest = wire
    count = MASKED_DEFAULT.slots + 1
    responses = list(
        stub.Screen(
            iter(
                [
                    _header(digest),
                    _chunk(
                        0, secret_context, [int(bsn_from(1))] * count, [1] * count, ciphertext=b"x"
                    ),
                ]
            )
        )
    )
    assert f"at most {MASKED_DEFAULT.slots} per chunk" in responses[0].result.error.message


def test_resume_after_kill_loses_and_duplicates_nothing(
    tmp_path: Path, start_server: Any, secret_context: SecretMaskedContext
) -> None:
    synth = generate(20_000, PERIOD, tmp_path / "data", seed=5)
    import_polis(synth.polis_path, tmp_path / "store")
    server = start_server(tmp_path / "store")
    (tmp_path / "pass").write_text("resume-test-passphrase")
    out, journal = tmp_path / "out.csv", tmp_path / "journal.sqlite"
    cmd = [
        sys.executable,
        "-m",
        "svb_client.cli",
        "screen",
        "--unsafe-insecure",
        "--server",
        server.target,
        "--households",
        str(synth.households_path),
        "--period",
        str(PERIOD),
        "--out",
        str(out),
        "--journal",
        str(journal),
        "--key",
        str(tmp_path / "key"),
        "--passphrase-file",
        str(tmp_path / "pass"),
        "--chunk-size",
        "32",
        "--quiet",
        "--rule",
        str(AIO_RULE),
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path.cwd())},
    )
    done, total = 0, 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists():
            try:
                with sqlite3.connect(journal, timeout=0.1) as db:
                    total, done = db.execute(
                        "SELECT count(*), coalesce(sum(done), 0) FROM chunks"
                    ).fetchone()
            except sqlite3.Error:
                pass
        if done >= 20:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 20 <= done < total, f"the kill did not land mid-batch ({done}/{total})"
    assert not out.exists()

    again = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(Path.cwd())}
    )
    assert again.returncode == 0, again.stderr
    assert "chunks already done before this run" in again.stdout
    decisions = _outreach(out)
    batch = read_households(synth.households_path)
    assert len(decisions) == len(batch) == synth.households
    records = Snapshot.open_current(tmp_path / "store").directory / "records.parquet"
    expected = oracle_decisions(records, batch.households, PERIOD)
    assert {h: d == "eligible" for h, (d, _) in decisions.items()} == expected


def test_journal_of_another_batch_is_refused(
    tmp_path: Path, start_server: Any, secret_context: SecretMaskedContext
) -> None:
    polis, hh, _ = _edge_case_data(tmp_path)
    import_polis(polis, tmp_path / "store")
    server = start_server(tmp_path / "store")
    run_screen(_job(hh, server.target, tmp_path, secret_context))
    from shared.errors import Error

    with pytest.raises(Error, match="belongs to a different batch"):
        run_screen(
            ScreenJob(
                security=ChannelSecurity.unsafe_plaintext(),
                households=hh,
                server=server.target,
                period=Period.parse("2025-01..2025-06"),
                out=tmp_path / "out2.csv",
                journal=tmp_path / "journal.sqlite",
                secret=secret_context,
                progress=False,
                rule=AIO_RULE,
            )
        )


def test_unreachable_server_is_a_clear_error(
    tmp_path: Path, secret_context: SecretMaskedContext
) -> None:
    _, hh, _ = _edge_case_data(tmp_path)
    from svb_client.wire import ServerError

    job = _job(hh, "127.0.0.1:1", tmp_path, secret_context, connect_timeout_s=1.0)
    with pytest.raises(ServerError, match=r"unreachable|DEADLINE"):
        run_screen(job)


def test_masked_mode_agrees_with_the_rule_evaluator(
    tmp_path: Path, start_server: Any, secret_context: SecretMaskedContext
) -> None:
    """The HE mode runs the rule's compiled plan; the rule evaluator runs the rule itself."""
    from shared.rules import Batch, check, evaluate, parse_file
    from shared.rules.batch import PersonMonths
    from uwv_server.store import person_month_rows

    synth = generate(2000, PERIOD, tmp_path / "data", seed=21)
    import_polis(synth.polis_path, tmp_path / "store")
    server = start_server(tmp_path / "store")
    run_screen(_job(synth.households_path, server.target, tmp_path, secret_context))
    he = {h: d == "eligible" for h, (d, _) in _outreach(tmp_path / "out.csv").items()}

    hh = read_households(synth.households_path)
    gross, tax = Snapshot.open_current(tmp_path / "store").household_kind_sums(
        PERIOD, hh.member_bsns, hh.member_counts
    )
    owner, pm_gross, pm_tax = person_month_rows(
        Snapshot.open_current(tmp_path / "store").directory,
        PERIOD,
        hh.member_bsns,
        hh.member_counts,
    )
    batch = Batch.from_columns(
        period=PERIOD,
        gross_cents=gross,
        tax_cents=tax,
        is_couple=np.array([c == "couple" for c in hh.categories]),
        known_income_cents=hh.known_income_cents,
        person_months=PersonMonths(owner, pm_gross, pm_tax),  # the exemption's per-month data
    )
    decision = evaluate(check(parse_file(AIO_RULE)), batch).decision
    assert decision is not None
    assert dict(zip(hh.household_ids, decision.tolist(), strict=True)) == he


def test_oversized_message_is_refused_and_server_stays_up(wire: Any) -> None:
    stub, _, _ = wire
    with pytest.raises(grpc.RpcError) as info:
        stub.UploadContext(pb.UploadContextRequest(parameter_set="x", context=b"\0" * (65 << 20)))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    assert stub.GetServerInfo(pb.GetServerInfoRequest()).max_message_bytes == 64 << 20


def test_deadline_is_honoured(wire: Any, secret_context: SecretMaskedContext) -> None:
    stub, _, digest = wire

    def slow() -> Any:
        yield _header(digest)
        time.sleep(1.5)  # the client stalls past its own deadline
        yield _chunk(0, secret_context, [int(bsn_from(1))], [1])

    with pytest.raises(grpc.RpcError) as info:
        list(stub.Screen(slow(), timeout=0.5))
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]
    assert stub.GetServerInfo(pb.GetServerInfoRequest()).server_version


@pytest.mark.parametrize("batch_id", ["", "batch-123456782", "9abc", "x" * 65])
def test_batch_ids_that_could_hold_a_bsn_are_refused(wire: Any, batch_id: str) -> None:
    stub, _, digest = wire
    header = _header(digest)
    header.header.batch_id = batch_id
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Screen(iter([header])))
    assert "batch_id" in info.value.details()  # type: ignore[attr-defined]
