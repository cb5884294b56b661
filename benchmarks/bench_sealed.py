"""A batch through sealed files versus over gRPC: the same data, in the same run.

    python -m benchmarks.bench_sealed --households 1000000                 # masked
    python -m benchmarks.bench_sealed --households 100000 --mode strict
    python -m benchmarks.bench_sealed --households 1000000 --mode enclave  # compute-to-data

Generates a seeded synthetic polis and household file, loads the store, makes a development
PKI and the key registry, then runs, each step as its own process (so its peak RSS is its own):

1. online: a real UWV server and ``svb-client screen`` over gRPC on localhost;
2. files: ``svb-client screen --request-out`` (seal), ``uwv-server process`` (verify and
   evaluate), ``svb-client screen --response`` (verify, decrypt, write the outreach file).

Prints each step's wall time and peak RSS, the file sizes per household, and checks that the
two outreach files are identical byte for byte. ``--also N`` repeats the file steps at N
households (the first N of the same file, against the same UWV data) so the peak memory of
each step can be compared across batch sizes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks._children import wait_rss_kb

ROOT = Path(__file__).resolve().parent.parent
PKI_PASS = "benchmark pki passphrase"
KEY_PASS = "benchmark-passphrase"
SVB_OIN = "00000099000000000020"  # the development PKI's SVB (shared.pki.devpki)


@dataclass(frozen=True)
class Step:
    name: str
    seconds: float
    rss_mb: float


def _run(name: str, cmd: list[str], env: dict[str, str]) -> Step:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rss = wait_rss_kb(proc)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{name} failed: {err[-2000:]}")
    return Step(name, seconds, rss / 1024)


def _prepare(work: Path, households: int, period: str, py: str, env: dict[str, str]) -> None:
    cli = [py, "-m", "uwv_server.cli"]
    subprocess.run(
        [*cli, "generate", "--households", str(households), "--period", period,
         "--out", str(work / "data")],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    subprocess.run(
        [*cli, "load", "--polis", str(work / "data/polis.parquet"), "--store", str(work / "store")],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def _first_households(source: Path, target: Path, count: int) -> None:
    """The rows of the first ``count`` households of a household file (file order)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(
            f"""COPY (
              WITH h AS (SELECT *, row_number() OVER () AS line FROM read_parquet('{source}')),
              firsts AS (SELECT household_id, min(line) AS first FROM h GROUP BY household_id),
              kept AS (SELECT household_id FROM firsts ORDER BY first LIMIT {count})
              SELECT h.* EXCLUDE (line) FROM h JOIN kept USING (household_id) ORDER BY line
            ) TO '{target}' (FORMAT parquet)"""
        )
    finally:
        con.close()


def _enclave_setup(work: Path) -> None:
    """Compute-to-data: signing keys, the key registry (keys and organisations) and a register
    in ``STORE/enclave`` in which SVB's bundle of the shipped rule is approved by UWV."""
    from datetime import UTC, datetime, timedelta

    from shared.crypto import (
        AccessRole,
        Approval,
        ApprovalPolicy,
        KeyEntry,
        OrganisationEntry,
        Registry,
        Requirement,
        Role,
        RuleBundle,
        SigningKey,
    )
    from shared.rules import digest, parse_file
    from uwv_server.enclave.approvals import RuleRegister

    keys = {n: SigningKey.generate(n) for n in ("svb", "uwv", "runner")}
    roles = {
        "svb": ("SVB", Role.AUTHOR),
        "uwv": ("UWV", Role.APPROVER),
        "runner": ("UWV", Role.RUNNER),
    }
    registry = Registry(
        keys=tuple(
            KeyEntry(
                name=n, organisation=o, roles=frozenset({r}), public_key=keys[n].public.to_b64()
            )
            for n, (o, r) in roles.items()
        ),
        approval_policy=ApprovalPolicy(
            required=(Requirement(role=Role.APPROVER, organisation="UWV"),), max_validity_days=90
        ),
        organisations=(
            OrganisationEntry(name="SVB", oin=SVB_OIN, roles=frozenset({AccessRole.SCREENER})),
        ),
    )
    (work / "registry.yaml").write_text(registry.to_yaml())
    keys["runner"].save(work / "runner.key", KEY_PASS.encode())
    rule = ROOT / "rules" / "aio.yaml"
    d = digest(parse_file(rule))
    now = datetime.now(UTC)
    shutil.rmtree(work / "store" / "enclave", ignore_errors=True)
    register = RuleRegister(work / "store" / "enclave" / "enclave.sqlite", registry)
    register.submit(
        RuleBundle(rule_digest=d, rule_yaml=rule.read_text()).sign(keys["svb"]).to_json(), now
    )
    approval = Approval.for_window(d, Role.APPROVER, now - timedelta(hours=1), 30)
    register.approve(approval.sign(keys["uwv"]).to_json(), now)
    register.close()


def _uwv_rules(work: Path, mode: str) -> list[str]:
    """How UWV knows the rule: approved in its register (enclave), else pinned (HE)."""
    if mode != "enclave":
        # no rule register here: UWV pins the default rule itself (as bench_e2e does)
        return ["--unsafe-pinned-rule", str(ROOT / "rules" / "aio.yaml")]
    return [
        "--enclave-state", str(work / "store" / "enclave"),
        "--runner-key", str(work / "runner.key"),
        "--runner-passphrase-file", str(work / "pass"),
    ]  # fmt: skip


def _screen(py: str, work: Path, out: Path, period: str, mode: str, *extra: str) -> list[str]:
    keyed = (
        ["--registry", str(work / "registry.yaml")]
        if mode == "enclave"
        else ["--key", str(work / "key"), "--passphrase-file", str(work / "pass")]
    )
    return [
        py, "-m", "svb_client.cli", "screen",
        "--households", str(work / "data/households.parquet"),
        "--period", period, "--mode", mode,
        "--out", str(out),
        *keyed,
        "--quiet", *extra,
    ]  # fmt: skip


def _files(
    py: str, work: Path, period: str, mode: str, env: dict[str, str], tag: str
) -> tuple[list[Step], Path, int, int]:
    files = work / f"files-{tag}"
    files.mkdir(exist_ok=True)
    request, response = files / "batch.req", files / "batch.resp"
    pki = ["--pki", str(work / "pki"), "--pki-passphrase-file", str(work / "pki.pass")]
    out = files / "outreach.csv"
    steps = [
        _run(
            "seal (svb-client --request-out)",
            _screen(py, work, out, period, mode, "--fresh", "--request-out", str(request), *pki),
            env,
        ),
        _run(
            "process (uwv-server process)",
            [
                py,
                "-m",
                "uwv_server.cli",
                "process",
                str(request),
                "--store",
                str(work / "store"),
                "--out",
                str(response),
                "--force",
                "--registry",
                str(work / "registry.yaml"),
                *_uwv_rules(work, mode),
                "--quiet",
                *pki,
            ],
            env,
        ),
        _run(
            "open (svb-client --response)",
            _screen(py, work, out, period, mode, "--response", str(response), *pki),
            env,
        ),
    ]
    return steps, out, request.stat().st_size, response.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--period", default="2025-01..2025-12")
    parser.add_argument("--mode", choices=("masked", "strict", "enclave"), default="masked")
    parser.add_argument("--also", type=int, help="repeat the file steps at this size too")
    parser.add_argument("--workdir", type=Path, help="keep data here (default: a temp dir)")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse the data and store already in --workdir"
    )
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-sealed-"))
    work.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    mode, period = args.mode, args.period

    print(f"# sealed-file benchmark, {mode} mode: {args.households:,} households, {period}")
    started = time.perf_counter()
    if not (args.reuse and (work / "store").exists()):
        _prepare(work, args.households, period, py, env)
    (work / "pass").write_text(KEY_PASS)
    (work / "pki.pass").write_text(PKI_PASS)
    subprocess.run(
        [py, "-m", "uwv_server.cli", "pki", "init", str(work / "pki"), "--force",
         "--passphrase-file", str(work / "pki.pass")],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    (work / "registry.yaml").write_text(
        f'keys: []\norganisations:\n  - {{name: SVB, oin: "{SVB_OIN}", roles: [screener]}}\n'
    )
    (work / "key").unlink(missing_ok=True)
    if mode == "enclave":
        _enclave_setup(work)
        (work / "key").write_text("")  # no HE key in this mode
    else:
        subprocess.run(
            [py, "-m", "svb_client.cli", "keys", "init", "--key", str(work / "key"),
             "--passphrase-file", str(work / "pass"), "--mode", mode],
            check=True, env=env, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    fresh = work / "store-fresh"
    if args.also and not (args.reuse and fresh.exists()):
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.copytree(work / "store", fresh)  # before any charge: for the smaller batch
    print(f"setup (generate, load, PKI, key; not measured): {time.perf_counter() - started:.1f} s")
    print(f"machine load (1, 5, 15 min) at the start: {os.getloadavg()}")

    # 1. online over gRPC (its own store copy would change nothing: NoBudget is not used here,
    # the budget is charged by both paths; the file path uses another batch id)
    port_file = work / "port"
    port_file.unlink(missing_ok=True)
    server = subprocess.Popen(
        [py, "-m", "uwv_server.cli", "serve", "--store", str(work / "store"), "--port", "0",
         "--port-file", str(port_file), "--unsafe-insecure",
         "--registry", str(work / "registry.yaml"), *_uwv_rules(work, mode)],
        env=env, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    while not port_file.exists():
        if server.poll() is not None:
            raise SystemExit("server did not start")
        time.sleep(0.05)
    online_out = work / "online.csv"
    target = f"127.0.0.1:{port_file.read_text().strip()}"
    try:
        online = _run(
            "online client (gRPC)",
            _screen(
                py, work, online_out, period, mode, "--fresh", "--server", target,
                "--unsafe-insecure",
            ),
            env,
        )  # fmt: skip
    finally:
        server.send_signal(signal.SIGTERM)
        server_rss = wait_rss_kb(server) / 1024

    if args.also and mode == "strict":
        # A strict key is accepted only through the online key check (the online run did it):
        # the smaller batch's copy of the store gets the accepted contexts, and no charge.
        shutil.rmtree(fresh / "contexts", ignore_errors=True)
        shutil.copytree(work / "store" / "contexts", fresh / "contexts")
    steps, file_out, req_bytes, resp_bytes = _files(py, work, period, mode, env, "main")
    n = args.households
    same = file_out.read_bytes() == online_out.read_bytes()
    files_s = sum(s.seconds for s in steps)

    print(f"{'step':<34}{'seconds':>9}{'households/s':>15}{'peak RSS MB':>13}")
    rate = n / online.seconds
    print(f"{online.name:<34}{online.seconds:>9.2f}{rate:>15,.0f}{online.rss_mb:>13,.0f}")
    print(f"{'online server (gRPC)':<34}{'':>9}{'':>15}{server_rss:>13,.0f}")
    for s in steps:
        print(f"{s.name:<34}{s.seconds:>9.2f}{n / s.seconds:>15,.0f}{s.rss_mb:>13,.0f}")
    print(f"{'files, all three steps':<34}{files_s:>9.2f}{n / files_s:>15,.0f}")
    print(
        f"request file {req_bytes:,} bytes ({req_bytes / n:.1f}/household), "
        f"response file {resp_bytes:,} bytes ({resp_bytes / n:.1f}/household)"
    )
    print(f"ratio files / online: {files_s / online.seconds:.2f}")
    print(f"outreach files identical (online vs files): {same}")

    if args.also:
        # The same UWV data (a copy of the store taken before any batch was charged) and the
        # first households of the same file: only the batch size differs between the sizes.
        small = work / "small"
        small.mkdir(exist_ok=True)
        (small / "data").mkdir(exist_ok=True)
        _first_households(
            work / "data/households.parquet", small / "data/households.parquet", args.also
        )
        (small / "store").unlink(missing_ok=True)
        (small / "store").symlink_to(work / "store-fresh")
        for name in ("pass", "pki.pass", "registry.yaml", "key", "runner.key"):
            if (work / name).exists():
                (small / name).write_bytes((work / name).read_bytes())
        if not (small / "pki").exists():
            (small / "pki").symlink_to(work / "pki")
        steps_small, _, req_small, _ = _files(py, small, period, mode, env, "small")
        print(f"peak RSS per step at {args.also:,} vs {n:,} households (MB), same UWV data:")
        for a, b in zip(steps_small, steps, strict=True):
            print(f"  {a.name:<32}{a.rss_mb:>8,.0f}{b.rss_mb:>8,.0f}")
        print(f"request bytes/household at {args.also:,}: {req_small / args.also:.1f}")
    print(f"machine load (1, 5, 15 min) at the end: {os.getloadavg()}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
