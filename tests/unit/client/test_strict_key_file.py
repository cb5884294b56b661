"""SVB's strict key file keeps a seed (issue 14): the same file gives the same public bytes on
every load (the client uploads once, issue 12), and it remembers the set UWV accepted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.errors import CryptoError
from shared.he.keysets import StrictKeyFamily
from shared.he.params import STRICT_BFV_N8192 as PARAMS
from svb_client.keys import MAGIC, load_or_create, load_secret_key

PASS = b"correct horse battery"


def test_the_same_file_gives_the_same_public_bytes_and_keeps_the_chosen_set(
    tmp_path: Path,
) -> None:
    path = tmp_path / "key.enc"
    created, new = load_or_create(path, PASS, PARAMS.name)
    assert new and isinstance(created, StrictKeyFamily) and created.chosen is None
    header = json.loads(path.read_bytes()[len(MAGIC) :].partition(b"\n")[0])
    assert header["secret"] == "strict-seed/v1" and "chosen" not in header
    first = created.selected().public_bytes()
    again, new = load_or_create(path, PASS, PARAMS.name)
    assert not new and isinstance(again, StrictKeyFamily)
    assert again.selected().public_bytes() == first
    again.accept(2)  # what the scheme does after UWV's key check; the file keeps it
    loaded = load_secret_key(path, PASS)
    assert isinstance(loaded, StrictKeyFamily) and loaded.chosen == 2
    assert loaded.master == created.master
    assert loaded.selected().public_bytes() == created.key_set(2).public_bytes()
    assert created.master not in path.read_bytes()  # the seed is sealed, never in clear


def test_a_strict_key_file_from_before_seeded_key_sets_is_refused(tmp_path: Path) -> None:
    import base64
    import os

    from shared.crypto.at_rest import ScryptParams, seal

    params, salt, nonce = ScryptParams(), os.urandom(16), os.urandom(12)
    header = json.dumps(
        {
            "kdf": "scrypt",
            **params.to_json(),
            "salt": base64.b64encode(salt).decode(),
            "nonce": base64.b64encode(nonce).decode(),
            "params": PARAMS.name,
        },
        sort_keys=True,
    ).encode()
    sealed = seal(
        b"a TenSEAL secret context",
        PASS,
        associated_data=MAGIC + header,
        params=params,
        salt=salt,
        nonce=nonce,
    )
    path = tmp_path / "old.enc"
    path.write_bytes(MAGIC + header + b"\n" + sealed.ciphertext)
    with pytest.raises(CryptoError, match="before seeded key sets"):
        load_secret_key(path, PASS)
