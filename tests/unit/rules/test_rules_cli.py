"""The command functions: exit codes and reports, never tracebacks."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rules_testkit import AIO, RR_BINDING, RR_DOC

from shared.rules.cli import check_command, digest_command, verify_command


def run(fn: object, *args: object, **kw: object) -> tuple[int, str]:
    out = io.StringIO()
    code = fn(*args, out, **kw)  # type: ignore[operator]
    return code, out.getvalue()


def test_check_and_digest_of_the_aio_rule() -> None:
    code, text = run(check_command, str(AIO))
    assert code == 0 and "19 of 19 test cases passed" in text
    code, text = run(digest_command, str(AIO))
    assert code == 0 and len(text.split()[0]) == 64


def test_verify_text_and_json() -> None:
    code, text = run(verify_command, str(AIO))
    assert code == 0 and "VERDICT: ACCEPTED" in text
    code, text = run(verify_command, str(AIO), json_output=True)
    assert code == 0 and json.loads(text)["accepted"] is True


def test_verify_with_binding() -> None:
    code, _ = run(verify_command, str(RR_DOC), binding=str(RR_BINDING))
    assert code == 0
    code, text = run(verify_command, str(RR_DOC))
    assert code == 1 and "REFUSED" in text


def test_bad_files_give_exit_codes_not_tracebacks(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("machine_readable:\n  actions: [{output: x, value: {operation: LOOP}}]\n")
    for fn in (check_command, digest_command, verify_command):
        code, text = run(fn, str(bad))
        assert code == 2
        assert "Traceback" not in text
        assert "'LOOP' is not supported" in text
        assert "machine_readable.actions[0].value.operation" in text
    code, text = run(check_command, str(tmp_path / "missing.yaml"))
    assert code == 2 and "cannot read" in text
    code, text = run(verify_command, str(AIO), binding=str(tmp_path / "missing.yaml"))
    assert code == 2 and "cannot read" in text


def test_type_error_names_file_and_path(tmp_path: Path) -> None:
    bad = tmp_path / "types.yaml"
    bad.write_text(
        AIO.read_text().replace(
            "values: [$norm, $bekend_inkomen]", "values: [$norm, $heeft_partner]"
        )
    )
    code, text = run(check_command, str(bad))
    assert code == 2
    assert f"{bad}:machine_readable.execution.actions[5].value.values[1].values[1]" in text
    assert "needs an amount or number here" in text


def test_failing_test_case_makes_check_fail(tmp_path: Path) -> None:
    broken = tmp_path / "aio.yaml"
    broken.write_text(AIO.read_text().replace("drempel: 30321", "drempel: 30322"))
    code, text = run(check_command, str(broken))
    assert code == 1
    assert "drempel is 30321, expected 30322" in text
