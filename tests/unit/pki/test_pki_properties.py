"""Property: any valid organisation name and OIN survive certificate → identity unchanged."""

from __future__ import annotations

from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given, settings
from hypothesis import strategies as st
from pki_testkit import NOW

from shared.pki import UWV, CertificateAuthority, Organisation, Profile, generate_key, peer_identity

_CA = CertificateAuthority.create(UWV, now=NOW, days=30, key=generate_key())
_LEAF_KEY = generate_key().public_key()

names = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=64).filter(
    lambda s: bool(s.strip())
)
oins = st.text(st.sampled_from("0123456789"), min_size=20, max_size=20)


@settings(max_examples=60, deadline=None)
@given(name=names, oin=oins, server=st.booleans())
def test_identity_round_trips(name: str, oin: str, server: bool) -> None:
    org = Organisation(name, oin)
    profile = Profile.SERVER if server else Profile.CLIENT
    cert = _CA.issue(_LEAF_KEY, org, profile=profile, now=NOW, days=1, common_name="x")
    for data in (cert.public_bytes(Encoding.PEM), cert.public_bytes(Encoding.DER)):
        ident = peer_identity(data, now=NOW)
        assert (ident.organisation, ident.oin) == (name, oin)
