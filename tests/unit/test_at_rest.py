"""Secrets at rest: one scrypt + AES-GCM helper with bounded parameters, one passphrase reader."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from shared.crypto.at_rest import (
    AtRestError,
    ScryptParams,
    open_sealed,
    read_passphrase,
    seal,
)
from shared.crypto.errors import KeyFileError
from shared.crypto.keys import SigningKey
from shared.errors import CryptoError
from svb_client.keys import MAGIC, load_secret_key

FAST = ScryptParams(n=2**10, r=8, p=1)


def test_seal_round_trip_and_the_header_is_bound() -> None:
    sealed = seal(b"secret", b"long passphrase", associated_data=b"header", params=FAST)
    assert (
        open_sealed(sealed, b"long passphrase", associated_data=b"header", where="x") == b"secret"
    )
    with pytest.raises(AtRestError, match="x: wrong passphrase"):
        open_sealed(sealed, b"long passphrase", associated_data=b"other", where="x")
    with pytest.raises(AtRestError, match="at least 8 bytes"):
        seal(b"secret", b"short", associated_data=b"")


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"n": 2**30, "r": 8, "p": 1}, "n=1073741824 is outside"),
        ({"n": 2**15, "r": 10**6, "p": 1}, "r=1000000 is outside"),
        ({"n": 2**15, "r": 8, "p": 10**6}, "p=1000000 is outside"),
        ({"n": 3000, "r": 8, "p": 1}, "not a power of two"),
        ({"n": 2**20, "r": 32, "p": 1}, "memory"),
        ({"n": "32768", "r": 8, "p": 1}, "outside"),
        ({"n": 2**15, "r": 8}, "lack 'p'"),
    ],
)
def test_absurd_scrypt_parameters_are_refused_before_any_work(
    doc: dict[str, object], message: str
) -> None:
    with pytest.raises(AtRestError, match=message):
        ScryptParams.from_json(doc)


def test_an_he_key_file_asking_for_absurd_scrypt_is_refused(tmp_path: Path) -> None:
    header = json.dumps(
        {
            "kdf": "scrypt",
            "n": 2**40,
            "r": 8,
            "p": 1,
            "salt": base64.b64encode(bytes(16)).decode(),
            "nonce": base64.b64encode(bytes(12)).decode(),
            "params": "ckks-masked-n8192",
        },
        sort_keys=True,
    ).encode()
    path = tmp_path / "k.enc"
    path.write_bytes(MAGIC + header + b"\n" + bytes(64))
    with pytest.raises(CryptoError, match="scrypt n=1099511627776 is outside"):
        load_secret_key(path, b"long passphrase")


def test_a_signing_key_file_asking_for_absurd_scrypt_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    SigningKey.generate("svb").save(path, b"long passphrase", scrypt_n=2**10)
    doc = json.loads(path.read_text())
    doc["kdf"]["p"] = 10**6
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyFileError, match="p=1000000 is outside"):
        SigningKey.load(path, b"long passphrase")


def test_one_passphrase_reader(tmp_path: Path) -> None:
    f = tmp_path / "p"
    f.write_bytes(b"first line\r\nsecond\n")
    assert read_passphrase(f, variable="X") == b"first line"
    assert read_passphrase(None, variable="X", env={"X": "from env"}) == b"from env"
    with pytest.raises(AtRestError, match=r"no passphrase: give --passphrase-file or set X"):
        read_passphrase(None, variable="X", env={})
    with pytest.raises(AtRestError, match="empty"):
        read_passphrase(None, variable="X", env={"X": ""})
    f.write_bytes(b"x" * 5000)
    with pytest.raises(AtRestError, match="longer than 1024"):
        read_passphrase(f, variable="X")
    with pytest.raises(AtRestError, match="cannot read"):
        read_passphrase(tmp_path / "missing", variable="X")
