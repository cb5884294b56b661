"""Fetch UWV's audit log over gRPC into an export file an auditor verifies offline.

The fetch itself trusts nothing: it copies the signed checkpoint and the entries it covers
(each must parse as a canonical run entry), and writes the usual export format. Verifying
the export (``aio-audit verify --log-key KEY``) is a separate step with a key the auditor
obtained out of band.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import grpc

from shared._proto.eligibility.v2 import audit_pb2 as apb
from shared._proto.eligibility.v2 import audit_pb2_grpc as apb_grpc
from shared.audit.checkpoint import Checkpoint
from shared.audit.entry import RunEntry
from shared.audit.errors import AuditError
from shared.audit.export import export_log
from shared.audit.log import AuditLog
from shared.audit.note import parse_note, parse_vkey
from shared.client_channel import ChannelSecurity

PAGE = 1000


class FetchError(AuditError):
    """The log server could not be reached or answered something unusable."""


def fetch_export(
    target: str, out: Path, *, security: ChannelSecurity, timeout: float = 30.0
) -> int:
    """Write an export of the log at ``target`` (HOST:PORT) to ``out``; returns its size.

    ``security``: mutual TLS with the auditor's certificate (the default of ``aio-audit
    fetch``), or plaintext to a loopback address only."""
    channel = security.open(target)
    stub = apb_grpc.AuditLogServiceStub(channel)
    try:
        key = stub.GetLogKey(apb.GetLogKeyRequest(), timeout=timeout, wait_for_ready=True)
        note = stub.GetCheckpoint(apb.GetCheckpointRequest(), timeout=timeout).note
        size = Checkpoint.parse(parse_note(note).text).size
        with tempfile.TemporaryDirectory() as tmp:
            copy = AuditLog.open(Path(tmp) / "copy.sqlite", key.origin)
            try:
                for start in range(0, size, PAGE):
                    end = min(size, start + PAGE)
                    leaves = stub.GetEntries(
                        apb.GetEntriesRequest(start=start, end=end), timeout=timeout
                    ).leaves
                    if len(leaves) != end - start:
                        raise FetchError(f"asked entries {start}..{end}, got {len(leaves)}")
                    copy.append([RunEntry.from_canonical_bytes(leaf) for leaf in leaves])
                export_log(copy, out, note, parse_vkey(key.verifier_key))
            finally:
                copy.close()
        return size
    except grpc.RpcError as exc:
        raise FetchError(f"audit log at {target}: {exc.code().name}: {exc.details()}") from None
    finally:
        channel.close()
