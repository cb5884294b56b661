"""Keys at rest: encrypted, opened only with the passphrase; the passphrase reader's bounds."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from pki_testkit import NOW, PASSPHRASE

from shared.pki import (
    KeyAtRestError,
    PkiLayout,
    TlsMaterial,
    generate_key,
    load_private_key,
    read_passphrase,
    save_private_key,
)


def test_key_round_trips_only_with_its_passphrase(tmp_path: Path) -> None:
    key, path = generate_key(), tmp_path / "k.pem"
    save_private_key(key, path, PASSPHRASE)
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    assert load_private_key(path, PASSPHRASE).public_key() == key.public_key()
    with pytest.raises(KeyAtRestError, match=r"k\.pem: wrong passphrase"):
        load_private_key(path, b"wrong passphrase")


def test_save_refuses_to_overwrite_and_short_passphrases(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    save_private_key(generate_key(), path, PASSPHRASE)
    with pytest.raises(KeyAtRestError, match="refusing to overwrite"):
        save_private_key(generate_key(), path, PASSPHRASE)
    with pytest.raises(KeyAtRestError, match="at least 8 bytes"):
        save_private_key(generate_key(), tmp_path / "short.pem", b"short")


def test_an_unencrypted_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "clear.pem"
    path.write_bytes(
        generate_key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(KeyAtRestError, match="not encrypted"):
        load_private_key(path, PASSPHRASE)


def test_missing_damaged_and_oversized_key_files(tmp_path: Path) -> None:
    with pytest.raises(KeyAtRestError, match="cannot read the key file"):
        load_private_key(tmp_path / "absent.pem", PASSPHRASE)
    (tmp_path / "junk.pem").write_bytes(b"hello")
    with pytest.raises(KeyAtRestError, match="not a PEM encrypted private key"):
        load_private_key(tmp_path / "junk.pem", PASSPHRASE)
    (tmp_path / "big.pem").write_bytes(b"x" * 70_000)
    with pytest.raises(KeyAtRestError, match="larger than"):
        load_private_key(tmp_path / "big.pem", PASSPHRASE)
    damaged = tmp_path / "damaged.pem"
    save_private_key(generate_key(), damaged, PASSPHRASE)
    lines = damaged.read_bytes().splitlines()
    lines[3] = b"A" * len(lines[3])
    damaged.write_bytes(b"\n".join(lines))
    with pytest.raises(KeyAtRestError, match="wrong passphrase, or the key file is damaged"):
        load_private_key(damaged, PASSPHRASE)


def test_tls_material_needs_the_passphrase(pki: Path) -> None:
    party = PkiLayout(pki).party("svb").directory
    with pytest.raises(KeyAtRestError, match="wrong passphrase"):
        TlsMaterial.load(party, b"not it at all", now=NOW)
    material = TlsMaterial.load(party, PASSPHRASE, now=NOW)
    assert material.identity.organisation == "SVB"
    assert "private_key" not in repr(material)


def test_tls_material_names_a_missing_file(tmp_path: Path) -> None:
    from shared.pki import PkiLayoutError

    with pytest.raises(PkiLayoutError, match=r"cert\.pem: missing"):
        TlsMaterial.load(tmp_path, PASSPHRASE, now=NOW)


def test_read_passphrase_from_file_env_or_neither(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_bytes(b"from the file\nsecond line ignored\n")
    assert read_passphrase(f, env={}) == b"from the file"
    assert read_passphrase(None, env={"AIO_PKI_PASSPHRASE": "from env"}) == b"from env"
    with pytest.raises(KeyAtRestError, match="give --passphrase-file or set AIO_PKI_PASSPHRASE"):
        read_passphrase(None, env={})
    with pytest.raises(KeyAtRestError, match="cannot read the passphrase"):
        read_passphrase(tmp_path / "absent", env={})
    (tmp_path / "empty").write_bytes(b"\n")
    with pytest.raises(KeyAtRestError, match="empty"):
        read_passphrase(tmp_path / "empty", env={})
    (tmp_path / "long").write_bytes(b"x" * 5000)
    with pytest.raises(KeyAtRestError, match="longer than 1024 bytes"):
        read_passphrase(tmp_path / "long", env={})
