"""The server under load and faults (issue 12): idle streams, concurrent strict batches,
results streamed without waiting for the client, limits, idle timeout, drain on SIGTERM."""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared._proto.eligibility.v2 import eligibility_pb2 as pb
from shared._proto.eligibility.v2 import eligibility_pb2_grpc as pb_grpc
from shared.digests import sha256_hex
from shared.he.backend import SecretMaskedContext
from shared.models import Period
from shared.oracle import oracle_decisions
from svb_client.households import read_households
from svb_client.pipeline import run_screen
from svb_client.schemes import StrictScheme
from tests.conftest import AIO_RULE, accept_strict_over_grpc, bsn_from
from tests.integration.test_screen_grpc import RULE_DIGEST, _job, _outreach
from uwv_server.grpc.runtime import ServerLimits
from uwv_server.store import Snapshot, import_polis
from uwv_server.synth import generate

PERIOD = Period.parse("2025-01..2025-12")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _header(digest: str, mode: int = pb.MODE_MASKED, batch_id: str = "t") -> pb.ScreenRequest:
    return pb.ScreenRequest(
        header=pb.BatchHeader(
            batch_id=batch_id,
            context_sha256=digest,
            mode=mode,
            period=str(PERIOD),
            rule_digest=RULE_DIGEST,
        )
    )


def _expected(store: Path, households: Path) -> dict[str, bool]:
    batch = read_households(households)
    records = Snapshot.open_current(store).directory / "records.parquet"
    return oracle_decisions(records, batch.households, PERIOD)


def _decisions(path: Path) -> dict[str, bool]:
    return {h: d == "eligible" for h, (d, _) in _outreach(path).items()}


def _wait_for(condition: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_idle_streams_starve_neither_health_nor_a_batch(
    tmp_path: Path, start_server: Any, secret_context: SecretMaskedContext, channel_to: Any
) -> None:
    synth = generate(300, PERIOD, tmp_path / "data", seed=4)
    import_polis(synth.polis_path, tmp_path / "store")
    limits = ServerLimits(max_streams_total=60, max_streams_per_caller=60)
    server = start_server(tmp_path / "store", limits=limits)
    stub = pb_grpc.ScreeningServiceStub(channel_to(server.target))
    release = threading.Event()

    def silent() -> Iterator[pb.ScreenRequest]:
        release.wait(60)
        return
        yield  # a generator that sends nothing until released

    calls = [stub.Screen(silent(), timeout=60) for _ in range(50)]
    try:
        _wait_for(lambda: server.server.admission.open_streams == 50, "50 open streams")
        health = health_pb2_grpc.HealthStub(channel_to(server.target))
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == SERVING
        run_screen(_job(synth.households_path, server.target, tmp_path, secret_context))
        assert _decisions(tmp_path / "out.csv") == _expected(
            tmp_path / "store", synth.households_path
        )
        assert server.server.admission.open_streams == 50
    finally:
        release.set()
        for call in calls:
            call.cancel()


def test_stream_limits_refuse_with_resource_exhausted(
    tmp_path: Path, start_server: Any, channel_to: Any
) -> None:
    synth = generate(20, PERIOD, tmp_path / "data", seed=4)
    import_polis(synth.polis_path, tmp_path / "store")
    server = start_server(
        tmp_path / "store", limits=ServerLimits(max_streams_total=5, max_streams_per_caller=2)
    )
    stub = pb_grpc.ScreeningServiceStub(channel_to(server.target))
    release = threading.Event()

    def silent() -> Iterator[pb.ScreenRequest]:
        release.wait(30)
        return
        yield

    held = [stub.Screen(silent(), timeout=30) for _ in range(2)]
    try:
        _wait_for(lambda: server.server.admission.open_streams == 2, "2 open streams")
        with pytest.raises(grpc.RpcError) as info:
            list(stub.Screen(iter([_header("ab" * 32)]), timeout=10))
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
        assert "limit per caller is 2" in info.value.details()  # type: ignore[attr-defined]
    finally:
        release.set()
        for call in held:
            call.cancel()
    metrics = server.server.metrics.registry
    assert metrics.get_sample_value("uwv_refusals_total", {"reason": "streams"}) == 1


def test_a_silent_stream_is_closed_after_the_idle_timeout(
    tmp_path: Path, start_server: Any, channel_to: Any
) -> None:
    synth = generate(20, PERIOD, tmp_path / "data", seed=4)
    import_polis(synth.polis_path, tmp_path / "store")
    server = start_server(tmp_path / "store", limits=ServerLimits(idle_timeout_s=0.3))
    stub = pb_grpc.ScreeningServiceStub(channel_to(server.target))
    release = threading.Event()

    def silent() -> Iterator[pb.ScreenRequest]:
        release.wait(20)
        return
        yield

    try:
        with pytest.raises(grpc.RpcError) as info:
            list(stub.Screen(silent(), timeout=20))
    finally:
        release.set()
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]
    assert "no message on this stream" in info.value.details()  # type: ignore[attr-defined]
    assert server.server.admission.open_streams == 0


def test_chunk_index_beyond_int32_fails_alone(
    tmp_path: Path, start_server: Any, secret_context: SecretMaskedContext, channel_to: Any
) -> None:
    synth = generate(20, PERIOD, tmp_path / "data", seed=4)
    import_polis(synth.polis_path, tmp_path / "store")
    server = start_server(tmp_path / "store")
    stub = pb_grpc.ScreeningServiceStub(channel_to(server.target))
    public = secret_context.public_bytes()
    stub.UploadContext(
        pb.UploadContextRequest(parameter_set=secret_context.params.name, context=public)
    )
    ct = secret_context.encrypt(np.zeros(1, dtype=np.int64))
    bad = pb.Chunk(index=2**31 + 5, member_counts=[1], member_bsns=[123456789], ciphertexts=[ct])
    good = pb.Chunk(index=2**32 - 1, member_counts=[1], member_bsns=[int(bsn_from(1))])
    good.ciphertexts.append(ct)
    responses = list(
        stub.Screen(
            iter(
                [
                    _header(sha256_hex(public)),
                    pb.ScreenRequest(chunk=bad),
                    pb.ScreenRequest(chunk=good),
                ]
            ),
            timeout=30,
        )
    )
    first, second = responses[0].result, responses[1].result
    assert first.index == 2**31 + 5 and first.error.code == pb.ERROR_CODE_INVALID_BSN
    assert first.error.chunk_index == -1  # does not fit the int32 field: "unknown", no crash
    assert second.index == 2**32 - 1 and not second.HasField("error")
    assert responses[2].summary.failed_chunks == 1


def test_four_concurrent_strict_batches_decide_as_a_sequential_run(
    tmp_path: Path, start_server: Any, strict_family_small: Any
) -> None:
    synth = generate(40, PERIOD, tmp_path / "data", seed=8)
    import_polis(synth.polis_path, tmp_path / "store")
    server = start_server(tmp_path / "store")
    sequential = tmp_path / "sequential"
    sequential.mkdir()
    run_screen(
        _job(synth.households_path, server.target, sequential, strict_family_small, mode="strict")
    )
    expected = _decisions(sequential / "out.csv")
    errors: list[BaseException] = []

    def one(i: int) -> None:
        work = tmp_path / f"run{i}"
        work.mkdir()
        try:
            job = _job(
                synth.households_path, server.target, work, strict_family_small, mode="strict"
            )
            run_screen(job)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    for i in range(4):
        assert _decisions(tmp_path / f"run{i}" / "out.csv") == expected
    assert expected == _expected(tmp_path / "store", synth.households_path)
    # one evaluator (one worker pool) served all five batches: same key, same context
    assert server.server.service.contexts.evaluators.stats()[0] == 1


def test_a_strict_client_that_waits_for_each_result_gets_it(
    tmp_path: Path, start_server: Any, strict_family_small: Any, channel_to: Any
) -> None:
    synth = generate(20, PERIOD, tmp_path / "data", seed=4)
    import_polis(synth.polis_path, tmp_path / "store")
    server = start_server(tmp_path / "store")
    stub = pb_grpc.ScreeningServiceStub(channel_to(server.target))
    scheme = StrictScheme(strict_family_small)
    public = scheme.public_context()
    accept_strict_over_grpc(stub, strict_family_small)
    cts = scheme.encrypt_chunk(np.array([1_000_000], dtype=np.int64), 12)
    answers: queue.Queue[pb.ScreenResponse] = queue.Queue()

    def requests() -> Iterator[pb.ScreenRequest]:
        yield _header(sha256_hex(public), mode=pb.MODE_STRICT)
        for index in range(2):
            chunk = pb.Chunk(index=index, member_counts=[1], member_bsns=[int(bsn_from(index))])
            chunk.ciphertexts.extend(cts)
            yield pb.ScreenRequest(chunk=chunk)
            answers.get(timeout=120)  # send nothing more until this chunk's result is here

    got = []
    for response in stub.Screen(requests(), timeout=240):
        got.append(response)
        if response.WhichOneof("item") == "result":
            answers.put(response)
    results = [r.result for r in got if r.WhichOneof("item") == "result"]
    assert [r.index for r in results] == [0, 1]
    assert all(len(r.ciphertexts) == 1 and not r.HasField("error") for r in results)
    assert got[-1].summary.chunks == 2


def _serve(store: Path, port_file: Path, grace: float) -> subprocess.Popen[str]:
    port_file.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uwv_server.cli",
            "serve",
            "--store",
            str(store),
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--unsafe-insecure",
            "--unsafe-pinned-rule",
            str(AIO_RULE),
            "--drain-grace",
            str(grace),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path.cwd())},
    )

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited: {proc.communicate()[0]}")
        return port_file.exists() and bool(port_file.read_text().strip())

    _wait_for(up, "the server's port", timeout=60)
    return proc


def test_sigterm_drains_and_the_rerun_completes(tmp_path: Path) -> None:
    synth = generate(3000, PERIOD, tmp_path / "data", seed=5)
    store = tmp_path / "store"
    import_polis(synth.polis_path, store)
    port_file = tmp_path / "port"
    server = _serve(store, port_file, grace=1.0)
    target = f"127.0.0.1:{port_file.read_text().strip()}"
    (tmp_path / "pass").write_text("drain-test-passphrase")
    out, journal = tmp_path / "out.csv", tmp_path / "journal.sqlite"

    def client_cmd(server_target: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "svb_client.cli",
            "screen",
            "--unsafe-insecure",
            "--server",
            server_target,
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
            "8",
            "--quiet",
            "--rule",
            str(AIO_RULE),
        ]

    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    channel = grpc.insecure_channel(target)
    try:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service="eligibility.v2.ScreeningService"), timeout=120
        )
        assert next(watch).status == SERVING
        client = subprocess.Popen(
            client_cmd(target), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        done = 0

        def progressed() -> bool:
            nonlocal done
            if journal.exists():
                try:
                    with sqlite3.connect(journal, timeout=0.1) as db:
                        done = db.execute("SELECT coalesce(sum(done), 0) FROM chunks").fetchone()[0]
                except sqlite3.Error:
                    pass
            return done >= 10 or client.poll() is not None

        _wait_for(progressed, "the batch to be under way", timeout=120)
        assert client.poll() is None, "the batch ended before the server was stopped"
        server.send_signal(signal.SIGTERM)
        assert next(watch).status == NOT_SERVING  # health, and Watch streams, see the drain
        log = server.communicate(timeout=60)[0]
        assert server.returncode == 0, log
        assert "draining" in log
        try:  # cut off at the end of the grace period (or finished within it)
            client.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # a client waiting for the server to come back
            client.kill()
            client.communicate()
    finally:
        channel.close()
    # The client was cut off at the end of the grace period (or finished in it); either way a
    # rerun against the restarted server completes with every household exactly once.
    restarted = _serve(store, port_file, grace=1.0)
    try:
        again = subprocess.run(
            client_cmd(f"127.0.0.1:{port_file.read_text().strip()}"),
            capture_output=True,
            text=True,
            env=env,
        )
        assert again.returncode == 0, again.stderr
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.communicate(timeout=60)
    decisions = _decisions(out)  # _outreach asserts no household appears twice
    assert len(decisions) == synth.households
    assert decisions == _expected(store, synth.households_path)
