"""A batch through sealed files gives the same outreach file as over gRPC, and every bad file
is refused with nothing decided and no budget charged twice (masked mode; every mode, with
the wider household file, in ``test_sealed_modes.py``).

SVB: ``svb-client screen … --request-out batch.req``, later ``… --response batch.resp``;
UWV: ``uwv-server process batch.req --store S --out batch.resp`` (both CLIs called in
process). Identities from a development PKI (``uwv-server pki init``), roles from the key
registry's ``organisations`` section.
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.client_channel import ChannelSecurity
from shared.he.backend import SecretMaskedContext
from shared.pki import SVB, init_dev_pki
from svb_client.cli import main as svb_main
from svb_client.pipeline import ScreenJob, run_screen
from tests.conftest import AIO_RULE
from tests.integration.test_screen_grpc import PERIOD, _edge_case_data, _outreach
from uwv_server.cli import main as uwv_main
from uwv_server.store import import_polis

PKI_PASS = "a development passphrase\n"
KEY_PASS = "svb key passphrase\n"


@dataclass(frozen=True)
class World:
    root: Path
    pki: Path
    store: Path
    households: Path
    registry: Path
    pki_pass: Path
    key_pass: Path
    expected: dict[str, bool]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("sealed")
    polis, households, expected = _edge_case_data(root)
    store = root / "store"
    import_polis(polis, store)
    pki = root / "pki"
    init_dev_pki(pki, PKI_PASS.strip().encode(), now=datetime.now(UTC), days=2)
    registry = root / "registry.yaml"
    registry.write_text(
        f'keys: []\norganisations:\n  - {{name: SVB, oin: "{SVB.oin}", roles: [screener]}}\n'
    )
    (root / "pki.pass").write_text(PKI_PASS)
    (root / "key.pass").write_text(KEY_PASS)
    return World(
        root, pki, store, households, registry, root / "pki.pass", root / "key.pass", expected
    )


def _store_copy(world: World, name: str) -> Path:
    target = world.root / name
    shutil.copytree(world.store, target)
    return target


CHUNK = 1
"""Households per chunk: the edge-case file spans more chunks than the client keeps in flight
over gRPC (8), so a request file must take every chunk without waiting for an answer."""


def svb(world: World, work: Path, *extra: str, mode: str = "masked") -> int:
    key = "svb-key.enc" if mode == "masked" else "svb-key-strict.enc"
    params = [] if mode == "masked" else ["--parameter-set", "bfv-strict-n8192"]
    return svb_main(
        [
            "screen",
            "--households", str(world.households),
            "--period", str(PERIOD),
            "--mode", mode, *params,
            "--rule", str(AIO_RULE),
            "--out", str(work / "outreach.csv"),
            "--key", str(world.root / key),
            "--passphrase-file", str(world.key_pass),
            "--pki", str(world.pki),
            "--pki-passphrase-file", str(world.pki_pass),
            "--quiet",
            "--chunk-size", str(CHUNK),
            *extra,
        ]
    )  # fmt: skip


def uwv(world: World, store: Path, request: Path, out: Path, *extra: str) -> int:
    return uwv_main(
        [
            "process", str(request),
            "--store", str(store),
            "--out", str(out),
            "--pki", str(world.pki),
            "--pki-passphrase-file", str(world.pki_pass),
            "--registry", str(world.registry),
            "--unsafe-pinned-rule", str(AIO_RULE),
            "--quiet",
            *extra,
        ]
    )  # fmt: skip


def charged_rows(store: Path) -> list[tuple[str, int, bytes]]:
    db = sqlite3.connect(store / "budget.sqlite")
    try:
        return sorted(db.execute("SELECT batch_id, chunk_index, charged FROM charges"))
    finally:
        db.close()


def _work(world: World, name: str) -> Path:
    work = world.root / name
    work.mkdir()
    return work


def test_files_give_the_same_outreach_as_grpc(
    world: World, start_server: object, secret_context: SecretMaskedContext
) -> None:
    assert len(world.expected) > 8 * CHUNK
    # online, over a real gRPC server
    online = _work(world, "online")
    server = start_server(_store_copy(world, "store-online"))  # type: ignore[operator]
    run_screen(
        ScreenJob(
            households=world.households,
            server=server.target,
            period=PERIOD,
            out=online / "outreach.csv",
            journal=online / "journal.sqlite",
            secret=secret_context,
            progress=False,
            rule=AIO_RULE,
            security=ChannelSecurity.unsafe_plaintext(),  # the test server is plaintext
            chunk_size=CHUNK,
        )
    )
    # through files
    files = _work(world, "files")
    store = _store_copy(world, "store-files")
    request, response = files / "batch.req", files / "batch.resp"
    assert svb(world, files, "--request-out", str(request)) == 0
    assert request.exists() and (files / "batch.req.meta.json").exists()
    assert not (files / "outreach.csv").exists()  # nothing decided yet
    assert uwv(world, store, request, response) == 0
    assert svb(world, files, "--response", str(response)) == 0

    online_rows = _outreach(online / "outreach.csv")
    file_rows = _outreach(files / "outreach.csv")
    assert file_rows == online_rows
    assert (files / "outreach.csv").read_bytes() == (online / "outreach.csv").read_bytes()
    decided = {h: d == "eligible" for h, (d, _) in file_rows.items() if d != "rejected"}
    assert decided == {h: e for h, e in world.expected.items() if h in decided}
    assert charged_rows(store)

    # the same response again changes nothing: the journal has every chunk decided
    before = (files / "outreach.csv").read_bytes()
    assert svb(world, files, "--response", str(response)) == 0
    assert (files / "outreach.csv").read_bytes() == before


def test_a_request_processed_twice_is_not_charged_twice(world: World) -> None:
    work = _work(world, "twice")
    store = _store_copy(world, "store-twice")
    request = work / "batch.req"
    assert svb(world, work, "--request-out", str(request)) == 0
    assert uwv(world, store, request, work / "first.resp") == 0
    charged = charged_rows(store)
    assert uwv(world, store, request, work / "second.resp") == 0
    assert charged_rows(store) == charged
    # the same answer byte for byte: no second masked sample of the same households
    first, second = (work / "first.resp").read_bytes(), (work / "second.resp").read_bytes()
    assert first == second
    assert svb(world, work, "--response", str(work / "second.resp")) == 0
    assert (work / "outreach.csv").exists()


def test_a_flipped_byte_in_the_request_is_refused_and_charges_nothing(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    work = _work(world, "flipped-request")
    store = _store_copy(world, "store-flipped")
    request = work / "batch.req"
    assert svb(world, work, "--request-out", str(request)) == 0
    data = bytearray(request.read_bytes())
    data[len(data) // 2] ^= 0x10
    request.write_bytes(bytes(data))
    (work / "batch.req.meta.json").unlink()  # the sidecar would catch it first; test the file
    capsys.readouterr()
    assert uwv(world, store, request, work / "batch.resp") != 0
    err = capsys.readouterr().err
    assert "fails authentication" in err
    assert "Traceback" not in err
    assert not (work / "batch.resp").exists()
    assert not (store / "budget.sqlite").exists() or charged_rows(store) == []


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_response_decides_nothing(
    world: World, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    work = _work(world, f"damaged-{damage}")
    store = _store_copy(world, f"store-damaged-{damage}")
    request, response = work / "batch.req", work / "batch.resp"
    assert svb(world, work, "--request-out", str(request)) == 0
    assert uwv(world, store, request, response) == 0
    data = response.read_bytes()
    (work / "batch.resp.meta.json").unlink()
    if damage == "flip":
        altered = bytearray(data)
        altered[-200] ^= 0x01
        response.write_bytes(bytes(altered))
    else:
        response.write_bytes(data[: len(data) - 1000])
    capsys.readouterr()
    assert svb(world, work, "--response", str(response)) != 0
    err = capsys.readouterr().err
    assert "response file is refused" in err and "Traceback" not in err
    assert not (work / "outreach.csv").exists()
    # the intact response still works afterwards: nothing was recorded from the bad one
    response.write_bytes(data)
    assert svb(world, work, "--response", str(response)) == 0
    assert (work / "outreach.csv").exists()


def test_a_response_to_another_request_is_refused(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _work(world, "batch-a"), _work(world, "batch-b")
    store = _store_copy(world, "store-ab")
    assert svb(world, a, "--request-out", str(a / "batch.req")) == 0
    assert svb(world, b, "--request-out", str(b / "batch.req")) == 0
    assert uwv(world, store, a / "batch.req", a / "batch.resp") == 0
    capsys.readouterr()
    assert svb(world, b, "--response", str(a / "batch.resp")) != 0
    err = capsys.readouterr().err
    assert "answers request batch-" in err and "awaiting an answer is batch-" in err
    assert not (b / "outreach.csv").exists()


def test_a_request_for_another_receiver_or_from_an_unlisted_party_is_refused(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    work = _work(world, "unlisted")
    store = _store_copy(world, "store-unlisted")
    request = work / "batch.req"
    # signed by the auditor's identity: a valid certificate, but not a screener
    assert (
        svb(world, work, "--request-out", str(request), "--signing", str(world.pki / "auditor"))
        == 0
    )
    capsys.readouterr()
    assert uwv(world, store, request, work / "batch.resp") != 0
    assert "not authorised to send a request" in capsys.readouterr().err
    # sealed to SVB's own key instead of UWV's
    other = _work(world, "misaddressed")
    sealed_to_svb = str(world.pki / "svb-sealing" / "cert.pem")
    assert (
        svb(
            world,
            other,
            "--request-out",
            str(other / "batch.req"),
            "--uwv-sealing-cert",
            sealed_to_svb,
        )
        == 0
    )
    capsys.readouterr()
    assert uwv(world, store, other / "batch.req", other / "batch.resp") != 0
    assert "addressed to OIN" in capsys.readouterr().err


def test_a_second_request_out_while_awaiting_is_refused(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    work = _work(world, "awaiting")
    assert svb(world, work, "--request-out", str(work / "batch.req")) == 0
    capsys.readouterr()
    assert svb(world, work, "--request-out", str(work / "again.req")) != 0
    assert "already awaits the response" in capsys.readouterr().err


@pytest.mark.parametrize("claimed", ["ADR", "00000099000000000030", "SVB sealed file"])
def test_a_signed_request_naming_another_requester_is_refused_and_charges_nothing(
    world: World,
    claimed: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SVB signs a request whose header names another organisation (or the old free label):
    UWV records the verified signer only, so the claim is refused before anything is
    charged, and SVB's open step shows why, deciding nothing."""
    import svb_client.pipeline.run as run

    monkeypatch.setattr(run, "_requester", lambda job: claimed)
    work = _work(world, f"claims-{claimed[:3]}")
    store = _store_copy(world, f"store-claims-{claimed[:3]}")
    request, response = work / "batch.req", work / "batch.resp"
    assert svb(world, work, "--request-out", str(request)) == 0
    assert uwv(world, store, request, response) == 0  # answered: a refusal, sealed to SVB
    assert not (store / "budget.sqlite").exists() or charged_rows(store) == []
    capsys.readouterr()
    assert svb(world, work, "--response", str(response)) != 0
    err = capsys.readouterr().err
    assert "is not the authenticated caller SVB" in err
    assert "Traceback" not in err
    assert not (work / "outreach.csv").exists()
