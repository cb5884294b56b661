"""Signed notes and checkpoints: the Go sumdb/note known answer, round trips, bad signatures,
and hostile notes and keys that must give a domain error."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from audit_testkit import ORIGIN, fixed_key, load_vectors
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.audit import (
    SIG_TYPE_COSIGNATURE_V1,
    Checkpoint,
    KeyFormatError,
    NoteError,
    NoteSigner,
    open_checkpoint,
    parse_note,
    parse_skey,
    parse_vkey,
    sign_checkpoint,
)
from shared.audit.note import sign_note, verified_signers

GO = load_vectors("signed_note_go.json")
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_go_reference_note_is_reproduced_byte_for_byte() -> None:
    signer = parse_skey(GO["skey"])
    assert signer.verifier.vkey() == GO["vkey"]
    assert sign_note(GO["text"], [signer]).format() == GO["note"]
    note = parse_note(GO["note"])
    assert note.text == GO["text"]
    assert verified_signers(note, [parse_vkey(GO["vkey"])])


def test_go_reference_note_altered_text_fails() -> None:
    note = parse_note(GO["note"].replace("cryptography", "cryptographY"))
    # Go's note.Open: a known key whose signature fails makes the note invalid
    with pytest.raises(NoteError, match="invalid signature for key"):
        verified_signers(note, [parse_vkey(GO["vkey"])])


def test_skey_round_trip() -> None:
    signer = NoteSigner("ap.example/w", fixed_key(9), SIG_TYPE_COSIGNATURE_V1)
    again = parse_skey(signer.unsafe_export_skey())
    assert again.verifier.vkey() == signer.verifier.vkey()
    assert parse_vkey(signer.verifier.vkey()).sig_type == SIG_TYPE_COSIGNATURE_V1


def test_checkpoint_round_trip_and_signature(log_signer: NoteSigner) -> None:
    cp = Checkpoint(ORIGIN, 42, b"\x07" * 32, time=1_740_000_000)
    text = sign_checkpoint(cp, log_signer)
    lines = text.split("\n")
    assert lines[:5] == [
        ORIGIN,
        "42",
        "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
        "time 1740000000",
        "",
    ]
    assert lines[5].startswith("\u2014 " + ORIGIN + " ")
    got = open_checkpoint(text, log_signer.verifier, origin=ORIGIN)
    assert got.checkpoint == cp
    assert got.checkpoint.signed_at == datetime(2025, 2, 19, 21, 20, tzinfo=UTC)


def test_checkpoint_with_bad_signature_is_refused(log_signer: NoteSigner) -> None:
    text = sign_checkpoint(Checkpoint(ORIGIN, 1, b"\x01" * 32), log_signer)
    forged = text.replace("\n1\n", "\n2\n", 1)
    with pytest.raises(NoteError, match="not valid"):
        open_checkpoint(forged, log_signer.verifier)
    other = NoteSigner(ORIGIN, fixed_key(77))
    with pytest.raises(NoteError, match="no signature"):
        open_checkpoint(
            sign_checkpoint(Checkpoint(ORIGIN, 1, b"\x01" * 32), other), log_signer.verifier
        )
    with pytest.raises(NoteError, match="expected"):
        open_checkpoint(text, log_signer.verifier, origin="someone.else/log")


def test_cosignature_verifies_and_carries_time(
    log_signer: NoteSigner, witness_signer: NoteSigner
) -> None:
    text = sign_checkpoint(Checkpoint(ORIGIN, 3, b"\x02" * 32), log_signer)
    note = parse_note(text)
    cosig = witness_signer.sign(note.text, NOW)
    cosigned = note.with_signature(cosig).format()
    got = open_checkpoint(cosigned, log_signer.verifier, [witness_signer.verifier])
    assert got.cosigners == (witness_signer.name,)
    assert witness_signer.verifier.timestamp(cosig) == int(NOW.timestamp())
    # A cosignature is over "cosignature/v1\ntime T\n" + body: a plain signature check fails.
    assert len(cosig.blob) == 72


def test_cosigner_needs_aware_time(witness_signer: NoteSigner) -> None:
    with pytest.raises(NoteError):
        witness_signer.sign("x\n", None)
    with pytest.raises(NoteError):
        witness_signer.sign("x\n", datetime(2025, 1, 1))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "no blank line\n",
        "text\n\n",
        "text\n\nnot a signature\n",
        "text\n\n\u2014 name\n",
        "text\n\n\u2014 name !!!!\n",
        "text\n\n\u2014 name AAAA\n",
        "text\n\n\u2014 na me AAAAAAA=\n",
        "text\x01\n\n\u2014 name AAAAAAA=\n",
        "text\n\n\u2014 name AAAAAAA=",
        b"\xff\xfe\n\n",
        12,
        None,
    ],
)
def test_malformed_notes_are_refused(bad: object) -> None:
    with pytest.raises(NoteError):
        parse_note(bad)


@pytest.mark.parametrize(
    "body",
    [
        "origin\n",
        "origin\n01\nAAAA\n",
        "origin\n-1\nAAAA\n",
        "origin\n1\nnot base64\n",
        "origin\n1\nAAAA\n",  # 3 bytes, not 32
        "origin\n99999999999999999999\n" + "A" * 43 + "=\n",
        "origin\n1\n" + "A" * 43 + "=",
    ],
)
def test_malformed_checkpoint_bodies_are_refused(body: str) -> None:
    with pytest.raises(NoteError):
        Checkpoint.parse(body)


def test_vkey_manglings_are_refused() -> None:
    vkey = GO["vkey"]
    for i in range(len(vkey)):
        for j in (i + 1, len(vkey)):
            if (i, j) == (0, len(vkey)):
                continue
            with contextlib.suppress(KeyFormatError):
                parse_vkey(vkey[i:j])
                pytest.fail(f"accepted a truncated vkey {vkey[i:j]!r}")
    mangled = vkey[:-2] + ("X" if vkey[-2] != "X" else "Y") + vkey[-1]
    with pytest.raises(KeyFormatError):
        parse_vkey(mangled)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_random_notes_give_domain_errors_only(data: str | bytes) -> None:
    signer_vkey = parse_vkey(GO["vkey"])
    with contextlib.suppress(NoteError):
        open_checkpoint(data, signer_vkey)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["origin", "5", "A" * 43 + "=", "time 12", "", "\u2014 a AAAAAAA=", "x y"]),
        max_size=8,
    ).map(lambda lines: "\n".join(lines) + "\n")
)
def test_structured_random_checkpoints_give_domain_errors_only(text: str) -> None:
    with contextlib.suppress(NoteError):
        open_checkpoint(text, parse_vkey(GO["vkey"]))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_random_keys_give_domain_errors_only(text: str) -> None:
    for parse in (parse_vkey, parse_skey):
        with contextlib.suppress(KeyFormatError):
            parse(text)
