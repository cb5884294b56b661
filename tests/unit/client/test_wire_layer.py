"""The wire layer's shape: its public names, and that no other client module touches protobuf."""

from __future__ import annotations

import ast
from pathlib import Path

import svb_client.wire

CLIENT = Path(svb_client.wire.__file__).parent.parent
WIRE_MODULES_WITH_PROTOBUF = {
    "wire/grpc_transport.py",
    "wire/sealed_transport.py",  # the same contract messages, written to and read from files
}


def test_public_names_are_pinned() -> None:
    assert sorted(svb_client.wire.__all__) == [
        "BatchDeferred",
        "BatchOpen",
        "ChunkAnswer",
        "EnclaveInfo",
        "EnclaveTransport",
        "EncryptedChunk",
        "ErrorInfo",
        "GrpcTransport",
        "Refusal",
        "RuleStatus",
        "RunBatch",
        "RunReply",
        "ScreeningTransport",
        "ServerError",
        "ServerInfo",
        "Transport",
        "WireStats",
    ]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_the_grpc_transport_touches_protobuf() -> None:
    offenders = []
    for path in sorted(CLIENT.rglob("*.py")):
        name = path.relative_to(CLIENT).as_posix()
        wire_code = any(
            m == "grpc" or m.startswith(("grpc.", "shared._proto", "google.protobuf"))
            for m in _imports(path)
        )
        if wire_code and name not in WIRE_MODULES_WITH_PROTOBUF:
            offenders.append(name)
    assert offenders == []
