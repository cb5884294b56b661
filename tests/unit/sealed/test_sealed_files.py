"""Files on disk: atomic creation, the Digikoppeling-style sidecar, the public API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sealed_testkit import SVB_OIN, UWV_OIN, Ca, clock, trusted

import shared.sealed
from shared.sealed import (
    MessageKind,
    SqliteProcessedIds,
    create_sealed_file,
    open_sealed_file,
    read_sidecar,
    sidecar_path,
)
from shared.sealed.errors import MalformedFile, ReplayRefused, SidecarMismatch
from shared.sealed.header import Header, InReplyTo, parse_header


def _make(ca: Ca, path: Path, payload: bytes = b"batch" * 1000) -> None:
    sender = ca.sender("SVB", SVB_OIN)
    _, recipient = ca.receiver("UWV", UWV_OIN)
    with create_sealed_file(
        path,
        sender=sender,
        recipient=recipient,
        kind=MessageKind.REQUEST,
        message_id="batch-f",
        content_type="application/x-protobuf",
        clock=clock,
    ) as w:
        w.write(payload)


def test_sidecar_describes_the_file(ca: Ca, tmp_path: Path) -> None:
    path = tmp_path / "batch.req"
    _make(ca, path)
    car = json.loads(sidecar_path(path).read_text())
    assert car["filename"] == "batch.req"
    assert car["size"] == path.stat().st_size
    assert car["checksum"]["type"] == "SHA-256" and len(car["checksum"]["value"]) == 64
    assert car["contentType"] == "application/vnd.aio.sealed"
    assert car["payloadContentType"] == "application/x-protobuf"
    assert car["sender"] == {"oin": SVB_OIN} and car["receiver"] == {"oin": UWV_OIN}
    assert car["creationTime"] == "2026-12-01T19:00:00Z"
    assert car["messageId"] == "batch-f" and car["kind"] == "request"
    assert read_sidecar(sidecar_path(path)).size == car["size"]
    assert not list(tmp_path.glob("*.partial"))


def test_a_file_that_does_not_match_its_sidecar_is_refused_before_reading(
    ca: Ca, tmp_path: Path
) -> None:
    path = tmp_path / "batch.req"
    _make(ca, path)
    receiver, _ = ca.receiver("UWV", UWV_OIN)
    data = bytearray(path.read_bytes())
    data[-10] ^= 1
    path.write_bytes(bytes(data))
    with (
        pytest.raises(SidecarMismatch, match="altered in transfer"),
        open_sealed_file(path, receiver=receiver, senders=trusted(ca), kinds={MessageKind.REQUEST}),
    ):
        pass
    path.write_bytes(bytes(data[:-1]))
    with (
        pytest.raises(SidecarMismatch, match="transfer is incomplete"),
        open_sealed_file(path, receiver=receiver, senders=trusted(ca), kinds={MessageKind.REQUEST}),
    ):
        pass


def test_a_failed_write_leaves_no_file(ca: Ca, tmp_path: Path) -> None:
    sender = ca.sender("SVB", SVB_OIN)
    _, recipient = ca.receiver("UWV", UWV_OIN)
    path = tmp_path / "batch.req"
    with (
        pytest.raises(RuntimeError),
        create_sealed_file(
            path,
            sender=sender,
            recipient=recipient,
            kind=MessageKind.REQUEST,
            message_id="batch-f",
            content_type="application/x-protobuf",
            clock=clock,
        ) as w,
    ):
        w.write(b"half a batch")
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_sqlite_replay_store_survives_reopen(ca: Ca, tmp_path: Path) -> None:
    sender = ca.sender("SVB", SVB_OIN)
    receiver, recipient = ca.receiver("UWV", UWV_OIN)
    path = tmp_path / "batch.req"
    with create_sealed_file(
        path,
        sender=sender,
        recipient=recipient,
        kind=MessageKind.REQUEST,
        message_id="batch-s",
        content_type="application/x-protobuf",
        clock=clock,
    ) as w:
        w.write(b"x")
    store = SqliteProcessedIds(tmp_path / "processed.sqlite")
    with open_sealed_file(
        path, receiver=receiver, senders=trusted(ca), kinds={MessageKind.REQUEST}, processed=store
    ) as reader:
        reader.read_all()
        reader.mark_processed()
    store.close()
    store = SqliteProcessedIds(tmp_path / "processed.sqlite")
    with open_sealed_file(
        path, receiver=receiver, senders=trusted(ca), kinds={MessageKind.REQUEST}, processed=store
    ) as reader:
        assert reader.previous is not None
    path2 = tmp_path / "batch2.req"
    with create_sealed_file(
        path2,
        sender=sender,
        recipient=recipient,
        kind=MessageKind.REQUEST,
        message_id="batch-s",
        content_type="application/x-protobuf",
        clock=clock,
    ) as w:
        w.write(b"y")
    with (
        pytest.raises(ReplayRefused),
        open_sealed_file(
            path2,
            receiver=receiver,
            senders=trusted(ca),
            kinds={MessageKind.REQUEST},
            processed=store,
        ),
    ):
        pass
    store.close()


def test_header_must_be_canonical_and_complete() -> None:
    good = Header.model_validate_json(
        json.dumps(
            {
                "kind": "response",
                "message_id": "r-1",
                "in_reply_to": {"message_id": "b-1", "sha256": "ab" * 32},
                "sender": {"oin": SVB_OIN, "certificates": ["AAAA"]},
                "receiver": {"oin": UWV_OIN, "key_id": "cd" * 32},
                "suite": {"kem_id": 32, "kdf_id": 1, "aead_id": 2},
                "content_type": "application/x-protobuf",
                "created": "2026-12-01T19:00:00Z",
                "chunk_size": 1024,
            }
        )
    )
    encoded = good.encode()
    assert parse_header(encoded, offset=13) == good
    spaced = json.dumps(json.loads(encoded), indent=1).encode()
    with pytest.raises(MalformedFile, match="canonical JSON"):
        parse_header(spaced, offset=13)
    data = json.loads(encoded)
    del data["in_reply_to"]
    with pytest.raises(MalformedFile, match="must name the request it answers"):
        parse_header(json.dumps(data, sort_keys=True, separators=(",", ":")).encode(), offset=13)
    data = json.loads(encoded)
    data["receiver"]["oin"] = "123"
    with pytest.raises(MalformedFile, match=r"byte 13: header field receiver.oin"):
        parse_header(json.dumps(data, sort_keys=True, separators=(",", ":")).encode(), offset=13)
    data = json.loads(encoded)
    data["chunk_size"] = 1 << 30
    with pytest.raises(MalformedFile, match="chunk_size"):
        parse_header(json.dumps(data, sort_keys=True, separators=(",", ":")).encode(), offset=13)
    data = json.loads(encoded)
    data["format"] = "aio-sealed/2"
    with pytest.raises(MalformedFile, match="is not 'aio-sealed/1'"):
        parse_header(json.dumps(data, sort_keys=True, separators=(",", ":")).encode(), offset=13)
    assert InReplyTo(message_id="b-1", sha256="ab" * 32) == good.in_reply_to


def test_public_api_is_pinned() -> None:
    assert sorted(shared.sealed.__all__) == sorted(
        [
            "DEFAULT_CHUNK_SIZE", "Header", "InReplyTo", "MalformedFile", "MemoryProcessedIds",
            "MessageKind", "NotAddressedToUs", "Party", "Processed", "ProcessedIds",
            "ReceiverKey", "Recipient", "ReplayRefused", "SealedError", "SealedReader",
            "SealedSummary", "SealedWriter", "SenderKey", "SenderVerifier", "Sidecar",
            "SidecarMismatch", "SignerRefused", "SqliteProcessedIds", "TamperedFile",
            "TruncatedFile", "TrustedSenders", "check_sidecar", "create_sealed_file",
            "iter_records", "key_id", "oin_of", "open_sealed_file", "read_sidecar",
            "sidecar_path", "verify_sealed_file", "write_record", "write_sidecar",
        ]
    )  # fmt: skip
    for name in shared.sealed.__all__:
        assert getattr(shared.sealed, name) is not None
