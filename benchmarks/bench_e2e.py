"""An HE mode end to end versus the plaintext path, on the same data, in the same run.

    python -m benchmarks.bench_e2e --households 1000000               # masked mode
    python -m benchmarks.bench_e2e --households 100000 --mode strict

Generates a seeded synthetic polis and household file, loads the store, then runs
1. the plaintext path (benchmarks/plaintext_path.py) as a child process, and
2. a real UWV server and a real SVB client (``svb-client screen``) over gRPC on localhost,
   over mutual TLS (a development CA made here) and over a plaintext loopback channel
   (``--channel both``, the default; a fresh server for each),
and prints households/s, bytes per household each way, each side's peak memory, the ratio
of each HE run's wall time to the plaintext path's, and mutual TLS against plaintext
(issue 10: within 10%). It also checks that every run produced identical decisions.
Targets: masked (issue 2) at least 30,000 households/s end to end and a ratio of at most 8;
strict (issue 3) at least 5,000 households/s and at most 4 KB uploaded per household.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks._children import wait_rss_kb

TARGET_RATE = {"masked": 30_000, "strict": 5_000}
TARGET_RATIO = {"masked": 8.0, "strict": float("inf")}
TARGET_UPLOAD = {"masked": float("inf"), "strict": 4096.0}
TARGET_TLS_OVERHEAD = 1.10
"""Issue 10: the HE path over mutual TLS within 10% of the plaintext channel's wall time."""


def _decisions(path: Path) -> dict[str, str]:
    with path.open(newline="") as f:
        return {row["household_id"]: row["decision"] for row in csv.DictReader(f)}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--period", default="2025-01..2025-12")
    parser.add_argument("--mode", choices=("masked", "strict"), default="masked")
    parser.add_argument("--workdir", type=Path, help="keep data here (default: a temp dir)")
    parser.add_argument(
        "--channel",
        choices=("both", "tls", "plaintext"),
        default="both",
        help="mutual TLS (a development CA), plaintext loopback, or both in the same run",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="HE rounds per channel, alternating; the best of each is reported",
    )
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-masked-"))
    work.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}

    mode = args.mode
    print(f"# {mode}-mode benchmark: {args.households:,} households, period {args.period}")
    started = time.perf_counter()
    subprocess.run(
        [
            py,
            "-m",
            "uwv_server.cli",
            "generate",
            "--households",
            str(args.households),
            "--period",
            args.period,
            "--out",
            str(work / "data"),
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        [
            py,
            "-m",
            "uwv_server.cli",
            "load",
            "--polis",
            str(work / "data/polis.parquet"),
            "--store",
            str(work / "store"),
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    print(f"setup (generate + load, not measured): {time.perf_counter() - started:.1f} s")
    households = work / "data/households.parquet"

    # 1. plaintext path
    plain_out = work / "plain.csv"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [
            py,
            "-m",
            "benchmarks.plaintext_path",
            "--store",
            str(work / "store"),
            "--households",
            str(households),
            "--period",
            args.period,
            "--out",
            str(plain_out),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    plain_rss = wait_rss_kb(proc)
    plain_s = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit("plaintext path failed")

    # 2. the HE mode over gRPC: a real server, a real client, per channel
    (work / "pass").write_text("benchmark-passphrase")
    # create the key outside the timed run (a one-off per SVB installation)
    (work / "key").unlink(missing_ok=True)
    subprocess.run(
        [
            py,
            "-m",
            "svb_client.cli",
            "keys",
            "init",
            "--key",
            str(work / "key"),
            "--passphrase-file",
            str(work / "pass"),
            "--mode",
            mode,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    channels = ("tls", "plaintext") if args.channel == "both" else (args.channel,)
    if "tls" in channels:
        _dev_pki(work, py, env)
    runs: dict[str, HeRun] = {}
    for round_ in range(args.repeat):
        # alternating, so that a change in the machine's load hits both channels alike
        for c in channels:
            run = _run_he(work, py, env, mode, args.period, households, c)
            if args.repeat > 1:
                print(f"round {round_ + 1} {_CHANNEL_LABEL[c]}: {run.seconds:.2f} s")
            if c not in runs or run.seconds < runs[c].seconds:
                runs[c] = run
    if args.repeat > 1:
        print(f"(the best of {args.repeat} rounds per channel below)")

    print(f"{'path':<34}{'seconds':>9}{'households/s':>15}{'peak RSS MB':>13}")
    plain_rate = runs[channels[0]].screened / plain_s
    print(
        f"{'plaintext (in the clear)':<34}{plain_s:>9.2f}{plain_rate:>15,.0f}"
        f"{plain_rss / 1024:>13,.0f}"
    )
    for channel, run in runs.items():
        label = f"{mode}, gRPC over {_CHANNEL_LABEL[channel]}"
        print(
            f"{label:<34}{run.seconds:>9.2f}{run.screened / run.seconds:>15,.0f}"
            f"{'client ' + format(run.client_rss_kb / 1024, ',.0f'):>13}"
        )
        print(f"{'':<58}{'server ' + format(run.server_rss_kb / 1024, ',.0f'):>13}")
    plain_decisions = _decisions(plain_out)
    ok = True
    for channel, run in runs.items():
        n = run.screened
        rate = n / run.seconds
        ratio = run.seconds / plain_s
        upload = run.bytes_sent / n
        same = plain_decisions == run.decisions
        print(f"-- {_CHANNEL_LABEL[channel]}")
        print(f"bytes per household: sent {upload:.1f}, received {run.bytes_received / n:.1f}")
        print(f"ratio {mode} / plaintext: {ratio:.2f} (target <= {TARGET_RATIO[mode]})")
        print(f"throughput: {rate:,.0f} households/s (target >= {TARGET_RATE[mode]:,})")
        print(f"upload: {upload:,.0f} bytes/household (target <= {TARGET_UPLOAD[mode]})")
        print(f"decisions identical to the plaintext path: {same}")
        ok = ok and same and ratio <= TARGET_RATIO[mode] and rate >= TARGET_RATE[mode]
        ok = ok and upload <= TARGET_UPLOAD[mode]
    if len(runs) == 2:
        tls_s, plain_channel_s = runs["tls"].seconds, runs["plaintext"].seconds
        print(
            f"mutual TLS / plaintext channel: {tls_s / plain_channel_s:.3f} "
            f"(target <= {TARGET_TLS_OVERHEAD})"
        )
        ok = ok and tls_s / plain_channel_s <= TARGET_TLS_OVERHEAD
    print("RESULT:", "targets met" if ok else "targets NOT met")
    same_everywhere = all(plain_decisions == run.decisions for run in runs.values())
    return 0 if same_everywhere else 1


_CHANNEL_LABEL = {"tls": "mutual TLS", "plaintext": "plaintext loopback"}

_REGISTRY = """\
keys: []
organisations:
  - {name: SVB, oin: "00000099000000000020", roles: [screener]}
"""


def _dev_pki(work: Path, py: str, env: dict[str, str]) -> None:
    """A development CA with UWV's server and SVB's client certificates (as the demo makes)."""
    (work / "tls-pass").write_text("benchmark-tls-passphrase")
    if not (work / "pki").exists():
        subprocess.run(
            [
                py,
                "-m",
                "uwv_server.cli",
                "pki",
                "init",
                str(work / "pki"),
                "--passphrase-file",
                str(work / "tls-pass"),
                "--days",
                "2",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            check=True,
        )
    (work / "registry.yaml").write_text(_REGISTRY)


@dataclass(frozen=True)
class HeRun:
    seconds: float
    client_rss_kb: int
    server_rss_kb: int
    screened: int
    bytes_sent: int
    bytes_received: int
    decisions: dict[str, str]


def _run_he(
    work: Path,
    py: str,
    env: dict[str, str],
    mode: str,
    period: str,
    households: Path,
    channel: str,
) -> HeRun:
    """One HE batch through a fresh server on ``channel`` ("tls" or "plaintext")."""
    if channel == "tls":
        tls_pass = ["--tls-passphrase-file", str(work / "tls-pass")]
        server_channel = [
            "--tls",
            str(work / "pki" / "server"),
            *tls_pass,
            "--registry",
            str(work / "registry.yaml"),
        ]
        client_channel = ["--tls-dir", str(work / "pki" / "svb"), *tls_pass]
        host = "localhost"
    else:
        server_channel = ["--unsafe-insecure"]  # plaintext, on loopback only
        client_channel = ["--unsafe-insecure"]
        host = "127.0.0.1"
    port_file = work / "port"
    port_file.unlink(missing_ok=True)
    server = subprocess.Popen(
        [
            py,
            "-m",
            "uwv_server.cli",
            "serve",
            "--store",
            str(work / "store"),
            "--port",
            "0",
            "--port-file",
            str(port_file),
            # no rule register in the benchmark: UWV pins the default rule itself
            "--unsafe-pinned-rule",
            str(Path(__file__).resolve().parent.parent / "rules" / "aio.yaml"),
            *server_channel,
        ],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    while not port_file.exists() or not port_file.read_text().strip():
        if server.poll() is not None:
            raise SystemExit(f"server ({channel}) did not start")
        time.sleep(0.05)
    he_out = work / f"outreach-{channel}.csv"
    summary_path = work / f"summary-{channel}.json"
    client_cmd = [
        py,
        "-m",
        "svb_client.cli",
        "screen",
        *client_channel,
        "--server",
        f"{host}:{port_file.read_text().strip()}",
        "--households",
        str(households),
        "--period",
        period,
        "--out",
        str(he_out),
        "--journal",
        str(work / f"journal-{channel}"),
        "--key",
        str(work / "key"),
        "--passphrase-file",
        str(work / "pass"),
        "--quiet",
        "--fresh",
        "--mode",
        mode,
        "--summary-json",
        str(summary_path),
    ]
    if mode == "strict":
        # strict mode's key check (cut-and-choose over K key sets): once per key, not per batch
        t_check = time.perf_counter()
        subprocess.run(
            [
                py,
                "-m",
                "svb_client.cli",
                "keys",
                "check",
                *client_channel,
                "--key",
                str(work / "key"),
                "--passphrase-file",
                str(work / "pass"),
                "--server",
                f"{host}:{port_file.read_text().strip()}",
                "--timeout",
                "600",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        print(
            f"key check over {_CHANNEL_LABEL[channel]} (once per key, not in the timed run): "
            f"{time.perf_counter() - t_check:.1f} s"
        )
    t0 = time.perf_counter()
    client = subprocess.Popen(client_cmd, env=env, stdout=subprocess.DEVNULL)
    client_rss = wait_rss_kb(client)
    seconds = time.perf_counter() - t0
    server.send_signal(signal.SIGTERM)
    server_rss = wait_rss_kb(server)
    if client.returncode != 0:
        raise SystemExit(f"client ({channel}) failed")
    summary = json.loads(summary_path.read_text())
    return HeRun(
        seconds,
        client_rss,
        server_rss,
        summary["screened"],
        summary["bytes_sent"],
        summary["bytes_received"],
        _decisions(he_out),
    )


if __name__ == "__main__":
    sys.exit(main())
