"""Kill -9 of a real ``uwv-server serve``: every charge still reaches the audit log, and no
evaluation of a person is forgotten by the budget.

A batch is charged chunk by chunk; its audit entry is written when the stream ends. The
server is killed with SIGKILL in the middle of a batch, restarted, and must then (1) log the
charges the crash left over (an entry marked ``recovered``), (2) answer the resumed batch's
charged chunks from storage without charging again, (3) give the resumed batch's entry a
``resumes`` link to the one before, (4) pass ``aio-audit verify``, with (5) every entry's salt
still opening it and (6) the logged charges equal to the ledger's, exactly.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from shared._proto.eligibility.v2 import eligibility_pb2 as pb
from shared.audit import RunEntry
from shared.audit.note import parse_skey
from shared.digests import sha256_hex
from shared.he.backend import SecretMaskedContext
from shared.rules import digest, parse_file
from tests.attacks.conftest import chunk_bytes, field_bytes, masked_ct
from tests.conftest import AIO_RULE, POLIS_COLUMNS, bsn_from, write_csv
from uwv_server.audit_trail import AuditTrail
from uwv_server.store import import_polis

pytestmark = pytest.mark.attack

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
CHUNKS = 12
PER_CHUNK = 10


def _serve(store: Path, port_file: Path, *extra: str) -> subprocess.Popen[str]:
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
            "--unsafe-pinned-rule",
            str(AIO_RULE),
            "--unsafe-insecure",
            *extra,
        ],
        env=ENV,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not port_file.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if not port_file.exists():
        proc.kill()
        raise AssertionError(proc.stderr.read() if proc.stderr else "server did not start")
    return proc


def _target(port_file: Path) -> str:
    return f"127.0.0.1:{port_file.read_text().strip()}"


def _messages(
    secret: SecretMaskedContext, context: str, rule: str, start: int = 0
) -> Iterator[bytes]:
    header = pb.BatchHeader(
        batch_id="crashed",
        context_sha256=context,
        mode=pb.MODE_MASKED,
        period="2025-01..2025-12",
        rule_digest=rule,
        chunk_count=CHUNKS,
    ).SerializeToString()
    yield field_bytes(1, header)
    for i in range(start, CHUNKS):
        bsns = [int(bsn_from(i * PER_CHUNK + j)) for j in range(PER_CHUNK)]
        yield chunk_bytes(i, [1] * PER_CHUNK, bsns, [masked_ct(secret, [100_000] * PER_CHUNK)])
        time.sleep(0.05)  # let the server answer as we go, so the kill lands mid-batch


def _stream(target: str, messages: Iterator[bytes]) -> Iterator[pb.ScreenResponse]:
    channel = grpc.insecure_channel(target)
    call = channel.stream_stream(
        "/eligibility.v2.ScreeningService/Screen",
        response_deserializer=pb.ScreenResponse.FromString,
    )
    try:
        yield from call(messages)
    finally:
        channel.close()


def _upload(target: str, secret: SecretMaskedContext) -> str:
    public = secret.public_bytes()
    with grpc.insecure_channel(target) as channel:
        channel.unary_unary(
            "/eligibility.v2.ScreeningService/UploadContext",
            response_deserializer=pb.UploadContextResponse.FromString,
        )(
            pb.UploadContextRequest(
                parameter_set=secret.params.name, context=public
            ).SerializeToString()
        )
    return sha256_hex(public)


def test_kill_minus_nine_mid_batch_then_restart_logs_every_charge(
    tmp_path: Path, secret_context: SecretMaskedContext
) -> None:
    rows = [
        [bsn_from(i), 1, "pension", f"2025-{m:02d}", 120_000 + i, 10_000]
        for i in range(CHUNKS * PER_CHUNK)
        for m in range(1, 13)
    ]
    import_polis(write_csv(tmp_path / "polis.csv", POLIS_COLUMNS, rows), tmp_path / "store")
    store, port_file = tmp_path / "store", tmp_path / "port"
    rule = digest(parse_file(AIO_RULE))

    server = _serve(store, port_file)
    try:
        context = _upload(_target(port_file), secret_context)
        answered: dict[int, bytes] = {}
        with pytest.raises(grpc.RpcError):
            for response in _stream(_target(port_file), _messages(secret_context, context, rule)):
                answered[response.result.index] = response.result.ciphertexts[0]
                if len(answered) == CHUNKS // 2:
                    server.send_signal(signal.SIGKILL)  # mid-batch, stream still open
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert 0 < len(answered) < CHUNKS

    # the crash left charges no entry holds
    ledger = sqlite3.connect(store / "budget.sqlite")
    charged_before = ledger.execute("SELECT count(*) FROM charges").fetchone()[0]
    unlogged = ledger.execute("SELECT count(*) FROM charges WHERE entry IS NULL").fetchone()[0]
    ledger.close()
    assert charged_before >= len(answered) and unlogged == charged_before

    server = _serve(store, port_file)
    try:
        # resume the whole batch: charged chunks are answered from storage, byte for byte
        again: dict[int, bytes] = {}
        for response in _stream(_target(port_file), _messages(secret_context, context, rule)):
            if response.WhichOneof("item") == "result":
                assert not response.result.HasField("error"), response.result.error.message
                again[response.result.index] = response.result.ciphertexts[0]
        assert len(again) == CHUNKS
        assert all(again[i] == ct for i, ct in answered.items())
        export = tmp_path / "log.jsonl"
        fetched = subprocess.run(
            [
                sys.executable,
                "-m",
                "shared.audit.cli",
                "fetch",
                "--unsafe-insecure",  # the test server is plaintext on loopback
                "--server",
                _target(port_file),
                "--out",
                str(export),
            ],
            env=ENV,
            capture_output=True,
            text=True,
        )
        assert fetched.returncode == 0, fetched.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    key = parse_skey((store / "keys" / "log.skey").read_text()).verifier.vkey()
    verified = subprocess.run(
        [sys.executable, "-m", "shared.audit.cli", "verify", str(export), "--log-key", key],
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "without a witness" in verified.stdout + verified.stderr

    trail = AuditTrail.open(store)
    try:
        entries: list[RunEntry] = trail.service.log.entries(0, trail.service.log.size)
        assert len(entries) == 2
        recovered, resumed = entries
        assert recovered.recovered is True and recovered.resumes is None
        assert resumed.resumes == 0 and resumed.recovered is None
        for entry in entries:  # every entry still opens: its own salt, by its commitment
            salt = trail.salt_for(entry.salt_commitment)
            assert salt is not None and salt.commitment() == entry.salt_commitment
    finally:
        trail.close()
    ledger = sqlite3.connect(store / "budget.sqlite")
    total = ledger.execute("SELECT sum(length(charged)) / 8 FROM charges").fetchone()[0]
    assert ledger.execute("SELECT count(*) FROM charges WHERE entry IS NULL").fetchone()[0] == 0
    ledger.close()
    assert total == CHUNKS * PER_CHUNK  # every member charged once, the replays not again
    assert sum(e.budget.bsns_charged for e in entries) == total
    assert np.sum([e.household_count for e in entries]) == CHUNKS * PER_CHUNK


def test_a_restart_forgets_no_evaluation_of_a_repeated_person(
    tmp_path: Path, secret_context: SecretMaskedContext
) -> None:
    """A dishonest SVB asks about one person again and again, each time in a new batch beside
    a new bystander, and UWV is killed with SIGKILL between two questions: the restarted
    server rebuilds the person's count from its ledger (the budget's compact counts, rebuilt
    in slices) and answers the person exactly ``--budget-limit`` times in the year, never
    more, while every bystander is answered."""
    limit = 3
    victim = int(bsn_from(0))
    bystanders = [int(bsn_from(1 + i)) for i in range(8)]
    rows = [
        [f"{b:09d}", 1, "pension", f"2025-{m:02d}", 120_000, 10_000]
        for b in [victim, *bystanders]
        for m in range(1, 13)
    ]
    import_polis(write_csv(tmp_path / "polis.csv", POLIS_COLUMNS, rows), tmp_path / "store")
    store, port_file = tmp_path / "store", tmp_path / "port"
    rule = digest(parse_file(AIO_RULE))
    budget = ("--budget-limit", str(limit))
    answered: list[int] = []

    def ask(target: str, context: str, question: int) -> None:
        header = pb.BatchHeader(
            batch_id=f"question-{question}",
            context_sha256=context,
            mode=pb.MODE_MASKED,
            period="2025-01..2025-12",
            rule_digest=rule,
            chunk_count=1,
        ).SerializeToString()
        chunk = chunk_bytes(
            0, [1, 1], [victim, bystanders[question]], [masked_ct(secret_context, [150_000] * 2)]
        )
        (result,) = [
            r.result
            for r in _stream(target, iter([field_bytes(1, header), chunk]))
            if r.WhichOneof("item") == "result"
        ]
        assert not result.HasField("error"), result.error.message
        refused = {e.slot: e.message for e in result.slot_errors}
        assert 1 not in refused, refused  # the bystander is always answered
        if 0 in refused:
            assert "budget" in refused[0], refused[0]
        else:
            answered.append(question)

    server = _serve(store, port_file, *budget)
    try:
        context = _upload(_target(port_file), secret_context)
        for q in range(2):
            ask(_target(port_file), context, q)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        server = _serve(store, port_file, *budget)
        context = _upload(_target(port_file), secret_context)
        for q in range(2, 5):
            ask(_target(port_file), context, q)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        server = _serve(store, port_file, *budget)
        context = _upload(_target(port_file), secret_context)
        for q in range(5, 8):
            ask(_target(port_file), context, q)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    assert answered == [0, 1, 2]
    ledger = sqlite3.connect(store / "budget.sqlite")
    charged = [
        np.frombuffer(blob, "<i8").tolist()
        for (blob,) in ledger.execute("SELECT charged FROM charges ORDER BY rowid")
    ]
    ledger.close()
    assert sum(victim in c for c in charged) == limit
    assert all(b in c for b, c in zip(bystanders, charged, strict=True))
