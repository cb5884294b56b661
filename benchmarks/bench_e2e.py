"""An HE mode end to end versus the plaintext path, on the same data, in the same run.

    python -m benchmarks.bench_e2e --households 1000000               # masked mode
    python -m benchmarks.bench_e2e --households 100000 --mode strict

Generates a seeded synthetic polis and household file, loads the store, then runs
1. the plaintext path (benchmarks/plaintext_path.py) as a child process, and
2. a real UWV server and a real SVB client (``svb-client screen``) over gRPC on localhost,
and prints households/s, bytes per household each way, each side's peak memory, and the
ratio of the two wall times. It also checks that both produced identical decisions.
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
from pathlib import Path

TARGET_RATE = {"masked": 30_000, "strict": 5_000}
TARGET_RATIO = {"masked": 8.0, "strict": float("inf")}
TARGET_UPLOAD = {"masked": float("inf"), "strict": 4096.0}


def _wait_rss_kb(proc: subprocess.Popen[bytes]) -> int:
    """Wait for a child and return its peak resident set size in KiB."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return int(usage.ru_maxrss)


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
    plain_rss = _wait_rss_kb(proc)
    plain_s = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit("plaintext path failed")

    # 2. masked mode over gRPC: a real server, a real client
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
            "--unsafe-insecure",
        ],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    while not port_file.exists():
        if server.poll() is not None:
            raise SystemExit("server did not start")
        time.sleep(0.05)
    (work / "pass").write_text("benchmark-passphrase")
    he_out = work / "outreach.csv"
    summary_path = work / "summary.json"
    client_cmd = [
        py,
        "-m",
        "svb_client.cli",
        "screen",
        "--unsafe-insecure",  # the server here serves plaintext on loopback
        "--server",
        f"127.0.0.1:{port_file.read_text().strip()}",
        "--households",
        str(households),
        "--period",
        args.period,
        "--out",
        str(he_out),
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
    t0 = time.perf_counter()
    client = subprocess.Popen(client_cmd, env=env, stdout=subprocess.DEVNULL)
    client_rss = _wait_rss_kb(client)
    he_s = time.perf_counter() - t0
    server.send_signal(signal.SIGTERM)
    server_rss = _wait_rss_kb(server)
    if client.returncode != 0:
        raise SystemExit("client failed")
    summary = json.loads(summary_path.read_text())

    same = _decisions(plain_out) == _decisions(he_out)
    n = summary["screened"]
    rate = n / he_s
    ratio = he_s / plain_s
    print(f"{'path':<28}{'seconds':>9}{'households/s':>15}{'peak RSS MB':>13}")
    print(
        f"{'plaintext (in the clear)':<28}{plain_s:>9.2f}{n / plain_s:>15,.0f}"
        f"{plain_rss / 1024:>13,.0f}"
    )
    print(
        f"{mode + ', gRPC end to end':<28}{he_s:>9.2f}{rate:>15,.0f}"
        f"{'client ' + format(client_rss / 1024, ',.0f'):>13}"
    )
    print(f"{'':<52}{'server ' + format(server_rss / 1024, ',.0f'):>13}")
    print(
        f"bytes per household: sent {summary['bytes_sent'] / n:.1f}, "
        f"received {summary['bytes_received'] / n:.1f}"
    )
    upload = summary["bytes_sent"] / n
    print(f"ratio {mode} / plaintext: {ratio:.2f} (target <= {TARGET_RATIO[mode]})")
    print(f"throughput: {rate:,.0f} households/s (target >= {TARGET_RATE[mode]:,})")
    print(f"upload: {upload:,.0f} bytes/household (target <= {TARGET_UPLOAD[mode]})")
    print(f"decisions identical to the plaintext path: {same}")
    ok = (
        same
        and ratio <= TARGET_RATIO[mode]
        and rate >= TARGET_RATE[mode]
        and upload <= TARGET_UPLOAD[mode]
    )
    print("RESULT:", "targets met" if ok else "targets NOT met")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
