"""The auditor's command over a file export: verdicts, tamper cases, never a traceback."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from audit_testkit import ORIGIN, make_entry
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.audit import AuditLog, ExportError, NoteSigner, export_log, load_export
from shared.audit.cli import main

NOW = datetime(2025, 6, 1, tzinfo=UTC)


class Setup:
    def __init__(self, tmp: Path, signer: NoteSigner) -> None:
        self.tmp = tmp
        self.signer = signer
        self.log = AuditLog.open(tmp / "log.sqlite", ORIGIN)
        self.vkey = signer.verifier.vkey()

    def grow(self, n: int) -> str:
        start = self.log.size
        self.log.append([make_entry(i) for i in range(start, start + n)])
        return self.log.checkpoint(self.signer, NOW)

    def export(self, name: str, checkpoint: str) -> Path:
        path = self.tmp / name
        export_log(self.log, path, checkpoint, self.signer.verifier)
        return path


@pytest.fixture
def s(tmp_path: Path, log_signer: NoteSigner) -> Setup:
    return Setup(tmp_path, log_signer)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_failure(code: int, err: str) -> None:
    assert code == 1
    assert err.startswith("aio-audit: FAIL: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_verify_ok(s: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    path = s.export("e.jsonl", s.grow(10))
    code, out, _ = run(capsys, "verify", str(path), "--log-key", s.vkey)
    assert code == 0 and out.startswith("OK: log " + ORIGIN + ": 10 entries")
    assert "taken from the export" not in out
    code, out, _ = run(capsys, "verify", str(path))
    assert code == 0 and "taken from the export" in out


def test_prove_inclusion_and_list(s: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    path = s.export("e.jsonl", s.grow(7))
    code, out, _ = run(capsys, "prove-inclusion", str(path), "4", "--log-key", s.vkey)
    assert code == 0 and "entry 4 (run run-000004)" in out and "proof[2]" in out
    code, out, err = run(capsys, "prove-inclusion", str(path), "7", "--log-key", s.vkey)
    _one_line_failure(code, err)
    code, out, _ = run(capsys, "list", str(path), "--log-key", s.vkey)
    assert code == 0
    rows = out.strip().split("\n")[2:]
    assert len(rows) == 7 and rows[3].split("\t")[3] == f"{3:064x}"
    assert rows[3].endswith("uwv.example/rules")


def test_prove_consistency(s: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    old = s.tmp / "old.cp"
    old.write_text(s.grow(5))
    path = s.export("e.jsonl", s.grow(6))
    code, out, _ = run(capsys, "prove-consistency", str(path), str(old), "--log-key", s.vkey)
    assert code == 0 and "5 -> 11" in out


def test_rewritten_history_fails_consistency(
    s: Setup, capsys: pytest.CaptureFixture[str], log_signer: NoteSigner
) -> None:
    old = s.tmp / "old.cp"
    old.write_text(s.grow(5))
    # UWV rewrites entry 2 in a fresh log and signs a new, larger checkpoint over it.
    forged = AuditLog.open(s.tmp / "forged.sqlite", ORIGIN)
    entries = [make_entry(i) for i in range(11)]
    entries[2] = make_entry(99)
    forged.append(entries)
    path = s.tmp / "forged.jsonl"
    export_log(forged, path, forged.checkpoint(log_signer, NOW), log_signer.verifier)
    code, _, _ = run(capsys, "verify", str(path), "--log-key", s.vkey)
    assert code == 0  # the forged export is self-consistent ...
    code, _, err = run(capsys, "prove-consistency", str(path), str(old), "--log-key", s.vkey)
    _one_line_failure(code, err)  # ... but not an extension of what the auditor saw
    assert "rewritten" in err or "not those of the old checkpoint" in err


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def _write(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_altered_entry_is_detected(s: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    path = s.export("e.jsonl", s.grow(8))
    lines = _lines(path)
    lines[4] = make_entry(42).canonical_bytes()  # a well-formed but forged entry
    _write(path, lines)
    code, _, err = run(capsys, "verify", str(path), "--log-key", s.vkey)
    _one_line_failure(code, err)
    assert "do not match the signed checkpoint" in err


def test_truncated_and_extended_exports_are_detected(
    s: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    path = s.export("e.jsonl", s.grow(8))
    lines = _lines(path)
    _write(path, lines[:-1])
    code, _, err = run(capsys, "verify", str(path), "--log-key", s.vkey)
    _one_line_failure(code, err)
    assert "truncated" in err
    _write(path, [*lines, make_entry(8).canonical_bytes()])
    code, _, err = run(capsys, "verify", str(path), "--log-key", s.vkey)
    _one_line_failure(code, err)
    path.write_bytes(path.read_bytes()[:-30])  # cut mid-line
    code, _, err = run(capsys, "verify", str(path), "--log-key", s.vkey)
    _one_line_failure(code, err)


def test_header_size_lie_is_detected(s: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    path = s.export("e.jsonl", s.grow(8))
    lines = _lines(path)
    header = json.loads(lines[0])
    header["size"] = 7
    _write(path, [json.dumps(header).encode(), *lines[1:-1]])
    code, _, err = run(capsys, "verify", str(path), "--log-key", s.vkey)
    _one_line_failure(code, err)
    assert "covers 8 entries" in err


def test_bad_checkpoint_signature_is_detected(s: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    path = s.export("e.jsonl", s.grow(3))
    lines = _lines(path)
    header = json.loads(lines[0])
    sig_start = header["checkpoint"].rindex(" ") + 1
    cp = header["checkpoint"]
    flipped = "A" if cp[sig_start + 10] != "A" else "B"
    header["checkpoint"] = cp[: sig_start + 10] + flipped + cp[sig_start + 11 :]
    _write(path, [json.dumps(header).encode(), *lines[1:]])
    code, _, err = run(capsys, "verify", str(path), "--log-key", s.vkey)
    _one_line_failure(code, err)
    assert "not valid" in err


def test_wrong_log_key_is_detected(s: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    from audit_testkit import fixed_key

    path = s.export("e.jsonl", s.grow(3))
    other = NoteSigner(ORIGIN, fixed_key(55)).verifier.vkey()
    code, _, err = run(capsys, "verify", str(path), "--log-key", other)
    _one_line_failure(code, err)


def test_witness_command(
    s: Setup, capsys: pytest.CaptureFixture[str], witness_signer: NoteSigner
) -> None:
    key = s.tmp / "w.key"
    key.write_text(witness_signer.unsafe_export_skey())
    state = s.tmp / "w.state"
    first = s.export("e1.jsonl", s.grow(4))
    code, out, err = run(
        capsys,
        "witness",
        str(first),
        "--log-key",
        s.vkey,
        "--key",
        str(key),
        "--state",
        str(state),
        "--now",
        "1750000000",
    )
    assert code == 0 and "first checkpoint" in err and "\u2014 ap.example/witness " in out
    second = s.export("e2.jsonl", s.grow(3))
    cosigned = s.tmp / "cosigned.cp"
    code, _, err = run(
        capsys,
        "witness",
        str(second),
        "--log-key",
        s.vkey,
        "--key",
        str(key),
        "--state",
        str(state),
        "--out",
        str(cosigned),
    )
    assert code == 0 and "consistent with size 4" in err
    assert cosigned.read_text().count("\u2014 ") == 2
    # A fork of the log is refused by the witness.
    forged = AuditLog.open(s.tmp / "forged.sqlite", ORIGIN)
    forged.append([make_entry(i) for i in (0, 1, 77, 3, 4, 5, 6, 7)])
    fork = s.tmp / "fork.jsonl"
    export_log(forged, fork, forged.checkpoint(s.signer, NOW), s.signer.verifier)
    code, _, err = run(
        capsys, "witness", str(fork), "--log-key", s.vkey, "--key", str(key), "--state", str(state)
    )
    _one_line_failure(code, err)
    assert "refused" in err
    # The witness's key is then usable for verify --witness-key.
    vk = witness_signer.verifier.vkey()
    lines = _lines(second)
    header = json.loads(lines[0])
    header["checkpoint"] = cosigned.read_text()
    _write(second, [json.dumps(header).encode(), *lines[1:]])
    code, out, _ = run(
        capsys,
        "verify",
        str(second),
        "--log-key",
        s.vkey,
        "--witness-key",
        vk,
        "--min-cosigners",
        "1",
    )
    assert code == 0 and "cosigned by: ap.example/witness" in out
    code, _, err = run(
        capsys,
        "verify",
        str(first),
        "--log-key",
        s.vkey,
        "--witness-key",
        vk,
        "--min-cosigners",
        "1",
    )
    _one_line_failure(code, err)


def test_keygen(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "k"
    code, out, _ = run(capsys, "keygen", "ap.example/w", "--out", str(out_file), "--cosigner")
    assert code == 0 and out.startswith("ap.example/w+")
    assert out_file.read_text().startswith("PRIVATE+KEY+ap.example/w+")
    assert (out_file.stat().st_mode & 0o777) == 0o600
    code, _, err = run(capsys, "keygen", "ap.example/w", "--out", str(out_file))
    _one_line_failure(code, err)  # never overwrites a key


def test_missing_file_and_bad_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "verify", str(tmp_path / "nope.jsonl"))
    _one_line_failure(code, err)
    code, _, err = run(
        capsys, "verify", str(tmp_path / "nope.jsonl"), "--log-key", "@" + str(tmp_path / "k")
    )
    _one_line_failure(code, err)


def test_export_round_trip(s: Setup) -> None:
    cp = s.grow(5)
    path = s.export("e.jsonl", cp)
    loaded = load_export(path)
    assert loaded.checkpoint == cp and len(loaded.leaves) == 5
    assert loaded.leaves[2] == make_entry(2).canonical_bytes()
    with pytest.raises(ExportError):
        export_log(s.log, s.tmp / "x", "garbage", s.signer.verifier)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=400), variant=st.integers(0, 3))
def test_random_export_files_never_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, variant: int
) -> None:
    path = tmp_path / "fuzz.jsonl"
    if variant == 1:  # a plausible header with junk fields
        data = (
            json.dumps(
                {
                    "format": "aio-audit-export/v1",
                    "size": 1,
                    "origin": "o",
                    "log_key": data.hex()[:60],
                    "witness_keys": [],
                    "checkpoint": data.decode("latin-1"),
                }
            ).encode()
            + b"\n"
            + data
            + b"\n"
        )
    elif variant == 2:
        data = b'{"format": "aio-audit-export/v1"}\n' + data
    path.write_bytes(data)
    for cmd in (["verify"], ["list"], ["prove-inclusion"], ["prove-consistency"]):
        argv = [*cmd, str(path)]
        if cmd == ["prove-inclusion"]:
            argv.append("0")
        if cmd == ["prove-consistency"]:
            argv.append(str(path))
        code = main(argv)
        _, err = capsys.readouterr()
        assert code == 1
        assert "internal error" not in err and "Traceback" not in err
