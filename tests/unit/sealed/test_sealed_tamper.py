"""What a reader refuses: each case a clear domain error, before or while reading.

The file under test has a 64-byte chunk size and five chunks, so every region of the format
(magic, header, key block, header signature, each frame's flag, length and ciphertext, the
trailer) is a few bytes away and can be altered exhaustively.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sealed_testkit import NOW, OTHER_OIN, SVB_OIN, UWV_OIN, Ca, clock, trusted
from test_sealed_roundtrip import seal

from shared.sealed import (
    InReplyTo,
    MemoryProcessedIds,
    MessageKind,
    ReceiverKey,
    Recipient,
    SealedReader,
    SenderKey,
    TrustedSenders,
)
from shared.sealed._hpke import key_block_length
from shared.sealed.errors import (
    MalformedFile,
    NotAddressedToUs,
    ReplayRefused,
    SealedError,
    SignerRefused,
    TamperedFile,
    TruncatedFile,
)
from shared.sealed.header import parse_header

World = tuple[SenderKey, ReceiverKey, Recipient, bytes]
PAYLOAD = bytes(range(256)) + b"tail of the batch"  # 273 bytes: 4 full chunks and a short one


@dataclass(frozen=True)
class Layout:
    header_end: int
    key_end: int
    sig_end: int
    frames: list[tuple[int, int]]
    trailer: int


def layout_of(blob: bytes) -> Layout:
    (hlen,) = struct.unpack(">I", blob[9:13])
    header = parse_header(blob[13 : 13 + hlen], offset=13)
    header_end = 13 + hlen
    key_end = header_end + key_block_length(header.suite)
    (slen,) = struct.unpack(">H", blob[key_end : key_end + 2])
    at = key_end + 2 + slen
    sig_end = at
    frames = []
    while True:
        flag, length = struct.unpack(">BI", blob[at : at + 5])
        frames.append((at, at + 5 + length))
        at += 5 + length
        if flag == 1:
            break
    return Layout(header_end, key_end, sig_end, frames, at)


@pytest.fixture(scope="module")
def world(ca: Ca) -> tuple[SenderKey, ReceiverKey, Recipient, bytes]:
    sender = ca.sender("SVB", SVB_OIN)
    receiver, recipient = ca.receiver("UWV", UWV_OIN)
    blob, _ = seal(PAYLOAD, sender, recipient)
    return sender, receiver, recipient, blob


def read(
    blob: bytes,
    receiver: ReceiverKey,
    senders: TrustedSenders,
    *,
    kinds: frozenset[MessageKind] = frozenset({MessageKind.REQUEST}),
    reply_to: InReplyTo | None = None,
    processed: MemoryProcessedIds | None = None,
) -> bytes:
    reader = SealedReader.open(
        io.BytesIO(blob),
        receiver=receiver,
        senders=senders,
        kinds=kinds,
        reply_to=reply_to,
        processed=processed,
    )
    data = reader.read_all()
    if processed is not None:
        reader.mark_processed()
    return data


def test_the_untouched_file_reads(ca: Ca, world: World) -> None:
    _, receiver, _, blob = world
    assert read(blob, receiver, trusted(ca)) == PAYLOAD
    assert len(layout_of(blob).frames) == 5


def test_every_flipped_byte_is_refused(ca: Ca, world: World) -> None:
    _, receiver, _, blob = world
    senders = trusted(ca)
    lay = layout_of(blob)
    accepted = []
    for i in range(len(blob)):
        altered = bytearray(blob)
        altered[i] ^= 0x01
        try:
            read(bytes(altered), receiver, senders)
        except SealedError:
            continue
        accepted.append(i)
    assert accepted == [], f"accepted with a flipped byte at {accepted} ({lay})"


@pytest.mark.parametrize("chunk", range(5))
def test_a_flipped_ciphertext_byte_names_its_chunk(ca: Ca, world: World, chunk: int) -> None:
    _, receiver, _, blob = world
    start, end = layout_of(blob).frames[chunk]
    altered = bytearray(blob)
    altered[(start + 5 + end) // 2] ^= 0x80
    with pytest.raises(TamperedFile, match=rf"chunk {chunk} fails authentication"):
        read(bytes(altered), receiver, trusted(ca))


def _rebuild(blob: bytes, frames: list[bytes]) -> bytes:
    lay = layout_of(blob)
    return blob[: lay.sig_end] + b"".join(frames) + blob[lay.trailer :]


def _frames(blob: bytes) -> list[bytes]:
    return [blob[s:e] for s, e in layout_of(blob).frames]


def test_a_dropped_chunk_is_refused(ca: Ca, world: World) -> None:
    _, receiver, _, blob = world
    for drop in range(5):
        frames = _frames(blob)
        del frames[drop]
        with pytest.raises((TamperedFile, TruncatedFile)):
            read(_rebuild(blob, frames), receiver, trusted(ca))


def test_swapped_chunks_are_refused(ca: Ca, world: World) -> None:
    _, receiver, _, blob = world
    frames = _frames(blob)
    frames[1], frames[2] = frames[2], frames[1]
    with pytest.raises(TamperedFile, match="chunk 1 fails authentication"):
        read(_rebuild(blob, frames), receiver, trusted(ca))


def test_a_repeated_chunk_is_refused(ca: Ca, world: World) -> None:
    _, receiver, _, blob = world
    frames = _frames(blob)
    frames.insert(2, frames[1])
    with pytest.raises(TamperedFile, match="chunk 2 fails authentication"):
        read(_rebuild(blob, frames), receiver, trusted(ca))


def test_a_chunk_from_another_file_is_refused(ca: Ca, world: World) -> None:
    sender, receiver, recipient, blob = world
    other, _ = seal(PAYLOAD, sender, recipient)  # same sender, receiver and payload
    frames = _frames(blob)
    frames[3] = _frames(other)[3]
    with pytest.raises(TamperedFile, match="chunk 3 fails authentication"):
        read(_rebuild(blob, frames), receiver, trusted(ca))


def test_an_early_last_flag_is_refused(ca: Ca, world: World) -> None:
    """Cutting after chunk 2 and marking it last: its tag was made with flag 0x00."""
    _, receiver, _, blob = world
    frames = _frames(blob)[:3]
    frames[2] = b"\x01" + frames[2][1:]
    with pytest.raises(TamperedFile, match="last chunk 2 fails authentication"):
        read(_rebuild(blob, frames), receiver, trusted(ca))


def test_every_truncation_is_refused(ca: Ca, world: World) -> None:
    _, receiver, _, blob = world
    senders = trusted(ca)
    lay = layout_of(blob)
    for cut in range(len(blob)):
        with pytest.raises(SealedError) as info:
            read(blob[:cut], receiver, senders)
        if cut >= lay.sig_end:
            assert isinstance(info.value, TruncatedFile | TamperedFile), (cut, info.value)
    with pytest.raises(TruncatedFile, match="inside the transcript signature"):
        read(blob[:-3], receiver, senders)
    with pytest.raises(TruncatedFile, match="inside chunk 4"):
        read(blob[: lay.frames[4][1] - 1], receiver, senders)


def test_data_after_the_trailer_is_refused(ca: Ca, world: World) -> None:
    _, receiver, _, blob = world
    with pytest.raises(MalformedFile, match="data after the signed trailer"):
        read(blob + b"\n", receiver, trusted(ca))


def test_not_a_sealed_file(ca: Ca, world: World) -> None:
    _, receiver, _, blob = world
    with pytest.raises(MalformedFile, match="not a sealed file"):
        read(b"household_id,bsn\n" + blob, receiver, trusted(ca))
    with pytest.raises(MalformedFile, match="text mode"):
        read(blob.replace(b"\r\n", b"\n", 1), receiver, trusted(ca))


def test_a_file_for_another_receiver_is_refused(ca: Ca) -> None:
    sender = ca.sender("SVB", SVB_OIN)
    _, other = ca.receiver("Other", OTHER_OIN)
    receiver, _ = ca.receiver("UWV", UWV_OIN)
    blob, _ = seal(PAYLOAD, sender, other)
    with pytest.raises(NotAddressedToUs, match=f"addressed to OIN {OTHER_OIN}, we are {UWV_OIN}"):
        read(blob, receiver, trusted(ca))


def test_a_file_for_another_key_of_ours_is_refused(ca: Ca) -> None:
    sender = ca.sender("SVB", SVB_OIN)
    _, old = ca.receiver("UWV", UWV_OIN)
    receiver, _ = ca.receiver("UWV", UWV_OIN)
    blob, _ = seal(PAYLOAD, sender, old)
    with pytest.raises(NotAddressedToUs, match="sealed to key"):
        read(blob, receiver, trusted(ca))


def test_a_kind_the_step_does_not_take_is_refused(ca: Ca, world: World) -> None:
    _, receiver, _, blob = world
    with pytest.raises(NotAddressedToUs, match=r"a request .* this step takes: rule_submission"):
        read(blob, receiver, trusted(ca), kinds=frozenset({MessageKind.RULE_SUBMISSION}))


def test_a_signer_from_another_ca_is_refused(ca: Ca) -> None:
    stranger = Ca.create("Stranger CA")
    sender = stranger.sender("SVB", SVB_OIN)
    receiver, recipient = ca.receiver("UWV", UWV_OIN)
    blob, _ = seal(PAYLOAD, sender, recipient)
    with pytest.raises(SignerRefused, match="does not chain to a trusted CA"):
        read(blob, receiver, trusted(ca))


def test_a_signer_not_authorised_for_the_kind_is_refused(ca: Ca, world: World) -> None:
    _, receiver, _, blob = world
    table = {SVB_OIN: frozenset({MessageKind.RULE_SUBMISSION})}
    with pytest.raises(SignerRefused, match="not authorised to send a request"):
        read(blob, receiver, trusted(ca, table))
    with pytest.raises(SignerRefused, match="it may send: nothing"):
        read(blob, receiver, trusted(ca, {UWV_OIN: frozenset(MessageKind)}))


def test_an_expired_signer_is_refused(ca: Ca) -> None:
    sender = ca.sender(
        "SVB", SVB_OIN, not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=1)
    )
    receiver, recipient = ca.receiver("UWV", UWV_OIN)
    blob, _ = seal(PAYLOAD, sender, recipient)
    with pytest.raises(SignerRefused, match="expired at"):
        read(blob, receiver, trusted(ca))


def test_a_signer_not_yet_valid_is_refused(ca: Ca) -> None:
    sender = ca.sender(
        "SVB", SVB_OIN, not_before=NOW + timedelta(days=1), not_after=NOW + timedelta(days=30)
    )
    receiver, recipient = ca.receiver("UWV", UWV_OIN)
    blob, _ = seal(PAYLOAD, sender, recipient)
    with pytest.raises(SignerRefused, match="not valid before"):
        read(blob, receiver, trusted(ca))


def test_a_signature_by_another_authorised_party_is_refused(ca: Ca) -> None:
    """Swap the header's certificate for another trusted party's: the header no longer
    verifies (and the HPKE info changes with the header, so the key block would not open)."""
    sender = ca.sender("SVB", SVB_OIN)
    other = ca.sender("SVB", SVB_OIN)  # same OIN, another key
    receiver, recipient = ca.receiver("UWV", UWV_OIN)
    blob, _ = seal(PAYLOAD, sender, recipient)
    blob2, _ = seal(PAYLOAD, other, recipient)
    lay, lay2 = layout_of(blob), layout_of(blob2)
    header2 = blob2[13 : lay2.header_end]
    spliced = blob[:9] + struct.pack(">I", len(header2)) + header2 + blob[lay.header_end :]
    with pytest.raises(SignerRefused, match="header signature does not verify"):
        read(spliced, receiver, trusted(ca))


def test_a_response_replayed_to_another_request_is_refused(ca: Ca) -> None:
    uwv = ca.sender("UWV", UWV_OIN)
    svb_key, svb = ca.receiver("SVB", SVB_OIN)
    answered = InReplyTo(message_id="batch-a", sha256="aa" * 32)
    waiting = InReplyTo(message_id="batch-b", sha256="bb" * 32)
    blob, _ = seal(
        b"answer", uwv, svb, kind=MessageKind.RESPONSE, message_id="r-a", in_reply_to=answered
    )
    kinds = frozenset({MessageKind.RESPONSE})
    wrong = r"answers request batch-a .* awaiting an answer is batch-b"
    with pytest.raises(ReplayRefused, match=wrong):
        read(blob, svb_key, trusted(ca), kinds=kinds, reply_to=waiting)
    same_id_other_file = InReplyTo(message_id="batch-a", sha256="cc" * 32)
    with pytest.raises(ReplayRefused):
        read(blob, svb_key, trusted(ca), kinds=kinds, reply_to=same_id_other_file)
    with pytest.raises(ReplayRefused, match="no request is awaiting an answer"):
        read(blob, svb_key, trusted(ca), kinds=kinds)


def test_a_request_processed_twice_is_reported_and_another_file_with_its_id_refused(
    ca: Ca, world: World
) -> None:
    sender, receiver, recipient, blob = world
    store = MemoryProcessedIds()
    read(blob, receiver, trusted(ca), processed=store)
    again = SealedReader.open(
        io.BytesIO(blob),
        receiver=receiver,
        senders=trusted(ca),
        kinds={MessageKind.REQUEST},
        processed=store,
    )
    assert again.previous is not None and again.previous.message_id == "batch-a"
    other, _ = seal(b"other content", sender, recipient)  # same id "batch-a", new file
    with pytest.raises(ReplayRefused, match="already processed from another file"):
        read(other, receiver, trusted(ca), processed=store)


def test_mark_processed_needs_the_whole_file(ca: Ca, world: World) -> None:
    _, receiver, _, blob = world
    reader = SealedReader.open(
        io.BytesIO(blob), receiver=receiver, senders=trusted(ca), kinds={MessageKind.REQUEST}
    )
    with pytest.raises(ValueError, match="only after reading it to its end"):
        reader.mark_processed()


def test_a_clock_is_used_for_validity(ca: Ca, world: World) -> None:
    _, receiver, _, blob = world
    later = TrustedSenders(
        [ca.cert], {SVB_OIN: frozenset(MessageKind)}, lambda: NOW + timedelta(days=400)
    )
    with pytest.raises(SignerRefused, match="expired"):
        read(blob, receiver, later)
    assert read(blob, receiver, TrustedSenders([ca.cert], {SVB_OIN: frozenset(MessageKind)}, clock))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_mangled_file_is_a_domain_error(ca: Ca, world: World, data: st.DataObject) -> None:
    """Random edits (overwrite, insert, delete a run of bytes) anywhere: always a SealedError
    (never a raw ValueError, struct.error or a traceback), never accepted."""
    _, receiver, _, blob = world
    altered = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(altered)))
        run = data.draw(st.binary(min_size=1, max_size=8))
        action = data.draw(st.sampled_from(["overwrite", "insert", "delete"]))
        if action == "overwrite":
            altered[at : at + len(run)] = run
        elif action == "insert":
            altered[at:at] = run
        else:
            del altered[at : at + len(run)]
    if bytes(altered) == blob:
        return
    with pytest.raises(SealedError):
        read(bytes(altered), receiver, trusted(ca))
