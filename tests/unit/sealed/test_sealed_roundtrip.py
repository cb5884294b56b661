"""Round trips: every payload size (0, chunk boundaries), any way of cutting the writes."""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sealed_testkit import SVB_OIN, UWV_OIN, Ca, clock, trusted

from shared.sealed import (
    InReplyTo,
    MessageKind,
    ReceiverKey,
    Recipient,
    SealedReader,
    SealedWriter,
    SenderKey,
    iter_records,
    write_record,
)
from shared.sealed.errors import MalformedFile

CHUNK = 64
FIXTURES = [HealthCheck.function_scoped_fixture]  # module-scoped keys, reused on purpose


def seal(
    data: bytes,
    sender: SenderKey,
    recipient: Recipient,
    *,
    cuts: list[int] | None = None,
    chunk_size: int = CHUNK,
    kind: MessageKind = MessageKind.REQUEST,
    message_id: str = "batch-a",
    in_reply_to: InReplyTo | None = None,
) -> tuple[bytes, SealedWriter]:
    out = io.BytesIO()
    with SealedWriter(
        out,
        sender=sender,
        recipient=recipient,
        kind=kind,
        message_id=message_id,
        content_type="application/x-protobuf",
        clock=clock,
        in_reply_to=in_reply_to,
        chunk_size=chunk_size,
    ) as w:
        start = 0
        for cut in sorted(cuts or []):
            w.write(data[start:cut])
            start = cut
        w.write(data[start:])
    return out.getvalue(), w


@pytest.fixture(scope="module")
def parties(ca: Ca) -> tuple[SenderKey, ReceiverKey, Recipient]:
    sender = ca.sender("SVB", SVB_OIN)
    receiver, recipient = ca.receiver("UWV", UWV_OIN)
    return sender, receiver, recipient


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURES)
@given(
    size=st.one_of(
        st.sampled_from([0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 1]),
        st.integers(0, 8 * CHUNK),
    ),
    data=st.data(),
)
def test_round_trip_any_size_any_cuts(
    ca: Ca, parties: tuple[SenderKey, ReceiverKey, Recipient], size: int, data: st.DataObject
) -> None:
    sender, receiver, recipient = parties
    payload = bytes((i * 7 + size) & 0xFF for i in range(size))
    cuts = data.draw(st.lists(st.integers(0, size), max_size=6))
    blob, writer = seal(payload, sender, recipient, cuts=cuts)
    reader = SealedReader.open(
        io.BytesIO(blob), receiver=receiver, senders=trusted(ca), kinds={MessageKind.REQUEST}
    )
    chunks = list(reader.chunks())
    assert b"".join(chunks) == payload
    assert all(len(c) == CHUNK for c in chunks[:-1])
    assert len(chunks) == max(1, -(-size // CHUNK))
    assert reader.summary is not None and writer.summary is not None
    assert reader.summary == writer.summary
    assert reader.summary.size == len(blob)


@pytest.mark.parametrize("p256", [False, True], ids=["x25519-receiver", "p256-receiver"])
@pytest.mark.parametrize("ed", [False, True], ids=["ecdsa-sender", "ed25519-sender"])
def test_round_trip_every_key_type(ca: Ca, p256: bool, ed: bool) -> None:
    sender = ca.sender("SVB", SVB_OIN, ed25519_key=ed)
    receiver, recipient = ca.receiver("UWV", UWV_OIN, p256=p256)
    blob, _ = seal(b"hello" * 100, sender, recipient)
    reader = SealedReader.open(
        io.BytesIO(blob), receiver=receiver, senders=trusted(ca), kinds={MessageKind.REQUEST}
    )
    assert reader.read_all() == b"hello" * 100
    assert reader.sender.oin == SVB_OIN
    assert reader.header.sender.oin == SVB_OIN and reader.header.receiver.oin == UWV_OIN


def test_header_is_known_before_any_chunk(
    ca: Ca, parties: tuple[SenderKey, ReceiverKey, Recipient]
) -> None:
    sender, receiver, recipient = parties
    blob, _ = seal(b"x" * 1000, sender, recipient)
    src = io.BytesIO(blob)
    reader = SealedReader.open(
        src, receiver=receiver, senders=trusted(ca), kinds={MessageKind.REQUEST}
    )
    assert reader.header.message_id == "batch-a"
    assert src.tell() < len(blob) - 900  # nothing of the payload was read yet


def test_reply_binds_request(ca: Ca) -> None:
    uwv = ca.sender("UWV", UWV_OIN)
    svb_key, svb = ca.receiver("SVB", SVB_OIN)
    bound = InReplyTo(message_id="batch-a", sha256="ab" * 32)
    blob, _ = seal(
        b"answer", uwv, svb, kind=MessageKind.RESPONSE, message_id="resp-a", in_reply_to=bound
    )
    reader = SealedReader.open(
        io.BytesIO(blob),
        receiver=svb_key,
        senders=trusted(ca),
        kinds={MessageKind.RESPONSE},
        reply_to=bound,
    )
    assert reader.read_all() == b"answer"
    assert reader.header.in_reply_to == bound


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURES)
@given(records=st.lists(st.binary(max_size=3 * CHUNK), max_size=12))
def test_records_survive_any_chunking(
    ca: Ca, parties: tuple[SenderKey, ReceiverKey, Recipient], records: list[bytes]
) -> None:
    sender, receiver, recipient = parties
    out = io.BytesIO()
    with SealedWriter(
        out,
        sender=sender,
        recipient=recipient,
        kind=MessageKind.REQUEST,
        message_id="batch-r",
        content_type="application/x-protobuf",
        clock=clock,
        chunk_size=CHUNK,
    ) as w:
        for r in records:
            write_record(w, r)
    reader = SealedReader.open(
        io.BytesIO(out.getvalue()),
        receiver=receiver,
        senders=trusted(ca),
        kinds={MessageKind.REQUEST},
    )
    assert list(iter_records(reader.chunks())) == records


def test_records_refuse_a_payload_cut_inside_a_record() -> None:
    with pytest.raises(MalformedFile, match="ends inside record 1"):
        list(iter_records([struct.pack(">I", 1) + b"a" + struct.pack(">I", 5) + b"ab"]))
    with pytest.raises(MalformedFile, match="claims 100 bytes"):
        list(iter_records([struct.pack(">I", 100)], limit=10))
