"""Every mode gives the same outreach file online and through sealed files, and an enclave
file that was altered, cut, misdirected or replayed is refused with nothing decided and no
budget charged twice.

One household file carries the hidden edge cases of the online tests (at, one cent below and
above the threshold, corrections, couples and trios, a BSN UWV does not know) plus
cost-sharers one cent either side of their norm, a person whose income is exactly zero, and a
row with an invalid BSN. Online, UWV is built by ``uwv-server serve``'s own function
(:func:`uwv_server.cli.screening_components`, with the compute-to-data service) on a free
localhost port; through files, SVB and UWV run their real CLIs in process
(``svb-client screen --request-out`` / ``uwv-server process`` / ``--response``).
"""

from __future__ import annotations

import csv
import shutil
import sqlite3
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.audit import AuditLog
from shared.crypto import AccessRole, OrganisationEntry, Registry, Role
from shared.pki import SVB, init_dev_pki
from shared.sealed._hpke import key_block_length
from shared.sealed.header import parse_header
from svb_client.cli import main as svb_main
from tests.conftest import AIO_RULE, bsn_from
from tests.integration.test_screen_grpc import PERIOD, _edge_case_data
from tests.unit.enclave.enclave_testkit import aio_bundle, approval, make_identities
from uwv_server.audit_trail import LOG_ORIGIN
from uwv_server.cli import build_parser, screening_components
from uwv_server.cli import main as uwv_main
from uwv_server.enclave.approvals import RuleRegister
from uwv_server.grpc.audit import audit_registrar
from uwv_server.grpc.server import build_server
from uwv_server.store import import_polis

PKI_PASS = "a development passphrase\n"
KEY_PASS = "svb key passphrase\n"
RUNNER_PASS = "runner key passphrase\n"
COUPLE = 209498  # art. 22 couple norm in force on 2025-12-31
A2 = COUPLE // 2  # art. 22a, A = 2: (40 + 60) / 200 of the couple norm, per person
MODES = ("masked", "strict", "enclave")


@dataclass(frozen=True)
class World:
    root: Path
    pki: Path
    store: Path
    households: Path
    registry: Path


def _households(root: Path) -> tuple[Path, Path]:
    """The online tests' edge cases, with cost-sharers, a zero income and an invalid row."""
    polis, households, _ = _edge_case_data(root)
    with households.open(newline="") as f:
        rows = [[*r, "0"] for r in list(csv.reader(f))[1:]]
    with polis.open(newline="") as f:
        records = list(csv.reader(f))
    months = [f"2025-{m:02d}" for m in range(1, 13)]
    extra = iter(range(5000, 6000))
    for name, total in (("a2-cent-below", 12 * (A2 - 50_000) - 1), ("a2-at", 12 * (A2 - 50_000))):
        bsn = bsn_from(next(extra))
        rows.append([name, bsn, "single", "50000", "1"])
        per, rest = divmod(total, 12)
        records += [
            [bsn, "1", "pension", m, str(per + (rest if i == 0 else 0) + 100), "100"]
            for i, m in enumerate(months)
        ]
    zero = bsn_from(next(extra))
    rows.append(["zero-income", zero, "single", "100000", "0"])
    records += [[zero, "3", "benefit", m, "5000", "5000"] for m in months]  # net 0 a month
    rows.append(["bad-bsn", "123456789", "single", "100000", "0"])  # fails the elfproef
    with households.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["household_id", "bsn", "category", "known_income_cents", "cost_sharers"])
        w.writerows(rows)
    with polis.open("w", newline="") as f:
        csv.writer(f).writerows(records)
    return polis, households


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("sealed-modes")
    polis, households = _households(root)
    store = root / "store"
    import_polis(polis, store)
    pki = root / "pki"
    init_dev_pki(pki, PKI_PASS.strip().encode(), now=datetime.now(UTC), days=2)
    ids = make_identities(with_auditor=False)
    registry = Registry(
        keys=ids.registry.keys,
        approval_policy=ids.registry.approval_policy,
        organisations=(
            OrganisationEntry(name="SVB", oin=SVB.oin, roles=frozenset({AccessRole.SCREENER})),
        ),
    )
    (root / "registry.yaml").write_text(registry.to_yaml())
    ids.runner.save(root / "runner.key", RUNNER_PASS.strip().encode(), scrypt_n=2**10)
    ids.svb.save(root / "svb-author.key", RUNNER_PASS.strip().encode(), scrypt_n=2**10)
    # the rule, submitted by SVB and approved by UWV, in the register every store copy holds
    now = datetime.now(UTC)
    register = RuleRegister(store / "enclave" / "enclave.sqlite", registry)
    d, envelope = aio_bundle(ids)
    register.submit(envelope, now)
    register.approve(approval(ids.uwv, Role.APPROVER, d, start=now), now)
    register.close()
    for name, text in (("pki.pass", PKI_PASS), ("key.pass", KEY_PASS), ("run.pass", RUNNER_PASS)):
        (root / name).write_text(text)
    return World(root, pki, store, households, root / "registry.yaml")


def _copy(world: World, name: str) -> Path:
    target = world.root / name
    shutil.copytree(world.store, target)
    return target


def _uwv_args(world: World, store: Path) -> list[str]:
    """What ``serve`` and ``process`` both take: store, registry, compute-to-data state."""
    return [
        "--store", str(store),
        "--registry", str(world.registry),
        "--enclave-state", str(store / "enclave"),
        "--runner-key", str(world.root / "runner.key"),
        "--runner-passphrase-file", str(world.root / "run.pass"),
    ]  # fmt: skip


@contextmanager
def online(world: World, store: Path) -> Iterator[str]:
    """UWV as ``uwv-server serve`` builds it, plaintext on a free localhost port."""
    # strict keys pass a key check with K=2 here (the default 8 only costs time)
    argv = ["serve", "--unsafe-insecure", "--strict-key-sets", "2", *_uwv_args(world, store)]
    args = build_parser().parse_args(argv)
    service, trail, parts = screening_components(args)
    server, port = build_server(
        service, 0, extra_services=[audit_registrar(trail), *parts.registrars]
    )
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)
        service.contexts.close()
        parts.close()
        trail.close()


def svb(world: World, work: Path, mode: str, *extra: str) -> int:
    if mode == "enclave":
        keyed = ["--registry", str(world.registry), "--chunk-size", "4"]
    else:
        keyed = [
            "--key", str(world.root / f"svb-{mode}.key"),
            "--passphrase-file", str(world.root / "key.pass"),
            "--chunk-size", "8",
        ]  # fmt: skip
        if mode == "strict":
            keyed += ["--parameter-set", "bfv-strict-n8192"]
    return svb_main(
        [
            "screen",
            "--households", str(world.households),
            "--period", str(PERIOD),
            "--mode", mode,
            "--rule", str(AIO_RULE),
            "--out", str(work / "outreach.csv"),
            "--pki", str(world.pki),
            "--pki-passphrase-file", str(world.root / "pki.pass"),
            "--quiet",
            *keyed,
            *extra,
        ]
    )  # fmt: skip


def uwv(world: World, store: Path, request: Path, out: Path, *extra: str) -> int:
    return uwv_main(
        [
            "process", str(request),
            "--out", str(out),
            "--pki", str(world.pki),
            "--pki-passphrase-file", str(world.root / "pki.pass"),
            "--quiet",
            *_uwv_args(world, store),
            *extra,
        ]
    )  # fmt: skip


def _work(world: World, name: str) -> Path:
    work = world.root / name
    work.mkdir()
    return work


def charged(store: Path) -> list[tuple[str, int, bytes]]:
    if not (store / "budget.sqlite").exists():
        return []
    db = sqlite3.connect(store / "budget.sqlite")
    try:
        return sorted(db.execute("SELECT batch_id, chunk_index, charged FROM charges"))
    finally:
        db.close()


def audit(store: Path) -> list[tuple[str, str, int, bool]]:
    """(mode, rule digest, households, has a run statement) of each audit log entry."""
    log = AuditLog.open(store / "audit" / "log.sqlite", LOG_ORIGIN)
    try:
        return [
            (e.mode.value, e.rule_digest, e.household_count, e.statement_digest is not None)
            for e in log.entries(0, log.size)
        ]
    finally:
        log.store.close()


@pytest.mark.parametrize("mode", MODES)
def test_online_and_through_files_give_the_same_outreach_file(world: World, mode: str) -> None:
    on = _work(world, f"online-{mode}")
    on_store = _copy(world, f"store-online-{mode}")
    with online(world, on_store) as target:
        assert svb(world, on, mode, "--server", target, "--unsafe-insecure") == 0

    files = _work(world, f"files-{mode}")
    store = _copy(world, f"store-files-{mode}")
    request, response = files / "batch.req", files / "batch.resp"
    if mode == "strict":
        # the key check is interactive (docs/he.md): it runs online, then files carry the
        # accepted context; nothing is charged by it
        with online(world, store) as target:
            check = ["keys", "check", "--key", str(world.root / "svb-strict.key")]
            check += ["--passphrase-file", str(world.root / "key.pass"), "--server", target]
            assert svb_main([*check, "--unsafe-insecure"]) == 0
    assert svb(world, files, mode, "--request-out", str(request)) == 0
    assert not (files / "outreach.csv").exists()  # nothing decided yet
    assert charged(store) == []
    assert uwv(world, store, request, response) == 0
    assert svb(world, files, mode, "--response", str(response)) == 0

    got = (files / "outreach.csv").read_bytes()
    assert got == (on / "outreach.csv").read_bytes()
    rows = {r["household_id"]: r for r in csv.DictReader(got.decode().splitlines())}
    assert rows["bad-bsn"]["decision"] == "rejected" and "elfproef" in rows["bad-bsn"]["reason"]
    assert rows["zero-income"]["decision"] == "eligible"
    assert rows["no-records"]["decision"] == "eligible"
    if mode == "enclave":  # as many verified run statements and replay packages
        statements = "outreach.csv.statements.jsonl"
        lines = (files / statements).read_bytes().splitlines()
        assert len(lines) == len((on / statements).read_bytes().splitlines()) > 1
        replays = [len(list((w / "outreach.csv.replay").iterdir())) for w in (files, on)]
        assert replays[0] == replays[1] == len(lines)
    for name, decision in (("a2-cent-below", "eligible"), ("a2-at", "not_eligible")):
        assert rows[name]["decision"] == decision  # on the art. 22a norm, in every mode
    # the same budget charges and the same audit entries as online
    assert len(charged(store)) == len(charged(on_store)) > 0
    assert audit(store) == audit(on_store) and audit(store)
    # a batch or run from a file names its verified sender (organisation and OIN), as a call
    # over mutual TLS names its certificate's
    log = AuditLog.open(store / "audit" / "log.sqlite", LOG_ORIGIN)
    try:
        # (the strict key check ran online over plaintext loopback here: no OIN to record)
        assert all(SVB.oin in e.requester for e in log.entries(0, log.size) if e.key_check is None)
    finally:
        log.store.close()


def _frames(blob: bytes) -> tuple[int, list[tuple[int, int]], int]:
    """(end of the header signature, each chunk frame's span, start of the trailer)."""
    (hlen,) = struct.unpack(">I", blob[9:13])
    header = parse_header(blob[13 : 13 + hlen], offset=13)
    at = 13 + hlen + key_block_length(header.suite)
    (slen,) = struct.unpack(">H", blob[at : at + 2])
    at += 2 + slen
    start, frames = at, []
    while True:
        flag, length = struct.unpack(">BI", blob[at : at + 5])
        frames.append((at, at + 5 + length))
        at += 5 + length
        if flag == 1:
            return start, frames, at


def _reframe(blob: bytes, change: Callable[[list[bytes]], None]) -> bytes:
    start, spans, trailer = _frames(blob)
    frames = [blob[s:e] for s, e in spans]
    change(frames)
    return blob[:start] + b"".join(frames) + blob[trailer:]


def _flip(blob: bytes) -> bytes:
    _, spans, _ = _frames(blob)
    s, e = spans[len(spans) // 2]
    altered = bytearray(blob)
    altered[(s + 5 + e) // 2] ^= 0x01
    return bytes(altered)


def _drop(frames: list[bytes]) -> None:
    del frames[1]


def _swap(frames: list[bytes]) -> None:
    frames[0], frames[1] = frames[1], frames[0]


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "flipped byte": _flip,
    "dropped chunk": lambda b: _reframe(b, _drop),
    "swapped chunks": lambda b: _reframe(b, _swap),
    "truncated": lambda b: b[: len(b) - 100],
}
SMALL_CHUNKS = ("--sealed-chunk-size", "256")
"""So that even a small compute-to-data file has chunks to drop and swap."""


@pytest.fixture(scope="module")
def enclave_exchange(world: World) -> tuple[Path, Path, Path]:
    """One enclave batch through files: (work folder, request, response); a clean store
    copy for each test is taken from ``store-exchange-clean``."""
    work = _work(world, "enclave-exchange")
    store = _copy(world, "store-exchange")
    request, response = work / "batch.req", work / "batch.resp"
    shutil.copytree(world.store, world.root / "store-exchange-clean")
    assert svb(world, work, "enclave", "--request-out", str(request), *SMALL_CHUNKS) == 0
    assert uwv(world, store, request, response, *SMALL_CHUNKS) == 0
    return work, request, response


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_enclave_request_is_refused_and_charges_nothing(
    world: World,
    enclave_exchange: tuple[Path, Path, Path],
    damage: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, request, _ = enclave_exchange
    work = _work(world, f"damaged-request-{damage}")
    store = _copy(world, f"store-damaged-request-{damage}")
    bad = work / "batch.req"
    bad.write_bytes(DAMAGE[damage](request.read_bytes()))  # no sidecar: test the file itself
    capsys.readouterr()
    assert uwv(world, store, bad, work / "batch.resp") != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert any(w in err for w in ("fails authentication", "truncated", "ends inside", "cut"))
    assert not (work / "batch.resp").exists()
    assert charged(store) == [] and audit(store) == []


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_enclave_response_decides_nothing(
    world: World,
    enclave_exchange: tuple[Path, Path, Path],
    damage: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    work, _, response = enclave_exchange
    bad = world.root / f"damaged-{damage}.resp"
    bad.write_bytes(DAMAGE[damage](response.read_bytes()))
    capsys.readouterr()
    assert svb(world, work, "enclave", "--response", str(bad)) != 0
    err = capsys.readouterr().err
    assert "response file is refused" in err and "Traceback" not in err
    assert not (work / "outreach.csv").exists()


def test_the_intact_enclave_response_works_after_damaged_ones(
    world: World, enclave_exchange: tuple[Path, Path, Path]
) -> None:
    work, _, response = enclave_exchange
    assert svb(world, work, "enclave", "--response", str(response)) == 0
    assert (work / "outreach.csv").exists() and (work / "outreach.csv.statements.jsonl").exists()


def test_an_enclave_request_processed_twice_is_charged_and_audited_once(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    work = _work(world, "enclave-twice")
    store = _copy(world, "store-enclave-twice")
    request = work / "batch.req"
    assert svb(world, work, "enclave", "--request-out", str(request)) == 0
    assert uwv(world, store, request, work / "first.resp") == 0
    before, entries = charged(store), audit(store)
    assert before and entries
    capsys.readouterr()
    assert uwv(world, store, request, work / "second.resp") == 0
    assert "processed before" in capsys.readouterr().out
    assert charged(store) == before and audit(store) == entries
    assert (work / "first.resp").read_bytes() == (work / "second.resp").read_bytes()
    assert svb(world, work, "enclave", "--response", str(work / "second.resp")) == 0


def test_an_enclave_response_replayed_to_another_request_is_refused(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _work(world, "enclave-a"), _work(world, "enclave-b")
    store = _copy(world, "store-enclave-ab")
    assert svb(world, a, "enclave", "--request-out", str(a / "batch.req")) == 0
    assert svb(world, b, "enclave", "--request-out", str(b / "batch.req")) == 0
    assert uwv(world, store, a / "batch.req", a / "batch.resp") == 0
    capsys.readouterr()
    assert svb(world, b, "enclave", "--response", str(a / "batch.resp")) != 0
    err = capsys.readouterr().err
    assert "answers request batch-" in err and "awaiting an answer is batch-" in err
    assert not (b / "outreach.csv").exists()


def test_an_enclave_request_for_another_receiver_is_refused(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    work = _work(world, "enclave-misaddressed")
    store = _copy(world, "store-enclave-misaddressed")
    to_svb = str(world.pki / "svb-sealing" / "cert.pem")
    request = work / "batch.req"
    assert (
        svb(world, work, "enclave", "--request-out", str(request), "--uwv-sealing-cert", to_svb)
        == 0
    )
    capsys.readouterr()
    assert uwv(world, store, request, work / "batch.resp") != 0
    assert "addressed to OIN" in capsys.readouterr().err
    assert charged(store) == []


def test_an_enclave_request_for_a_rule_not_approved_decides_nothing(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    work = _work(world, "enclave-revoked")
    store = _copy(world, "store-enclave-revoked")
    register = RuleRegister(
        store / "enclave" / "enclave.sqlite", Registry.from_file(world.registry)
    )
    (info,) = register.list(datetime.now(UTC))
    register.revoke(info.digest, "withdrawn for the test", datetime.now(UTC))
    register.close()
    request, response = work / "batch.req", work / "batch.resp"
    assert svb(world, work, "enclave", "--request-out", str(request)) == 0
    assert uwv(world, store, request, response) == 0  # answered: the run refused
    assert charged(store) == []
    capsys.readouterr()
    assert svb(world, work, "enclave", "--response", str(response)) != 0
    err = capsys.readouterr().err
    assert "UWV refused run batch-" in err and "revoked" in err and "Traceback" not in err
    assert not (work / "outreach.csv").exists()


def test_a_rule_submission_file_signed_by_an_unknown_author_is_refused(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    work = _work(world, "rule-submission")
    store = _copy(world, "store-rule-submission")
    for f in (store / "enclave").glob("enclave.sqlite*"):
        f.unlink()  # a register that has not seen the rule
    ids_key = work / "stranger.key"
    author = make_identities(with_auditor=False)  # another registry's author: refused below
    author.svb.save(ids_key, b"author passphrase", scrypt_n=2**10)
    (work / "author.pass").write_text("author passphrase\n")
    pki = ["--pki", str(world.pki), "--pki-passphrase-file", str(world.root / "pki.pass")]
    submit = ["rules", "submit", str(AIO_RULE), "--passphrase-file", str(work / "author.pass")]
    request, response = work / "rule.req", work / "rule.resp"
    assert svb_main([*submit, "--key", str(ids_key), "--request-out", str(request), *pki]) == 0
    assert (work / "rule.req.meta.json").exists()
    assert uwv(world, store, request, response) == 0
    capsys.readouterr()
    args = [*submit, "--key", str(ids_key), "--request", str(request), "--response", str(response)]
    assert svb_main([*args, *pki]) != 0  # signed by a key UWV's registry does not know
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "UWV refused the request" in err and "is not in the key registry" in err
    # nothing entered the register
    registry = Registry.from_file(world.registry)
    register = RuleRegister(store / "enclave" / "enclave.sqlite", registry)
    assert register.list(datetime.now(UTC)) == []
    register.close()


def test_a_rule_submitted_as_a_file_is_pending_until_uwv_approves_it(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _copy(world, "store-rule-pending")
    for f in (store / "enclave").glob("enclave.sqlite*"):
        f.unlink()
    request, response = tmp_path / "rule.req", tmp_path / "rule.resp"
    registry = Registry.from_file(world.registry)
    key = world.root / "svb-author.key"  # SVB's author key in UWV's registry
    pki = ["--pki", str(world.pki), "--pki-passphrase-file", str(world.root / "pki.pass")]
    submit = ["rules", "submit", str(AIO_RULE), "--key", str(key)]
    submit += ["--passphrase-file", str(world.root / "run.pass")]
    assert svb_main([*submit, "--request-out", str(request), *pki]) == 0
    assert uwv(world, store, request, response) == 0
    capsys.readouterr()
    assert svb_main([*submit, "--request", str(request), "--response", str(response), *pki]) == 0
    assert "pending" in capsys.readouterr().out
    register = RuleRegister(store / "enclave" / "enclave.sqlite", registry)
    (info,) = register.list(datetime.now(UTC))
    assert info.state == "pending" and info.accepted
    register.close()
    # the same file again: the same answer byte for byte, nothing submitted twice
    assert uwv(world, store, request, tmp_path / "again.resp") == 0
    assert (tmp_path / "again.resp").read_bytes() == response.read_bytes()
