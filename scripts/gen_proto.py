"""Regenerate the Python gRPC code in ``shared/_proto`` from ``proto/``.

Run ``python scripts/gen_proto.py`` after editing a .proto file; ``--check`` regenerates into a
temporary folder and fails if the committed code differs (the test suite runs that check).
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
OUT_DIR = ROOT / "shared" / "_proto"
PACKAGE = "shared._proto"


def generate(out: Path) -> None:
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"--plugin=protoc-gen-mypy={Path(sys.executable).parent / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={Path(sys.executable).parent / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *protos,
    ]
    subprocess.run(cmd, check=True)
    for path in out.rglob("*.py*"):
        text = path.read_text()
        # protoc writes absolute imports from the proto root; make them package-relative.
        fixed = re.sub(
            r"\bfrom eligibility\.(v\d+) import", rf"from {PACKAGE}.eligibility.\1 import", text
        )
        fixed = re.sub(
            r"\bimport eligibility\.(v\d+)\.", rf"import {PACKAGE}.eligibility.\1.", fixed
        )
        path.write_text(fixed)
    for folder in [out, *[p for p in out.rglob("*") if p.is_dir()]]:
        (folder / "__init__.py").touch()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed code is stale")
    args = parser.parse_args()
    if not args.check:
        if OUT_DIR.exists():
            shutil.rmtree(OUT_DIR)
        generate(OUT_DIR)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh)
        stale = []
        for path in fresh.rglob("*"):
            if path.is_file():
                committed = OUT_DIR / path.relative_to(fresh)
                if not committed.exists() or not filecmp.cmp(path, committed, shallow=False):
                    stale.append(str(committed.relative_to(ROOT)))
        if stale:
            print("generated protobuf code is stale; run python scripts/gen_proto.py:", *stale)
            return 1
    print("generated protobuf code is current")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
