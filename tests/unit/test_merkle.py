"""The Merkle tree against RFC 9162's definition and Certificate Transparency's test vectors."""

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from replay import merkle

# The leaves and roots of the tree every CT implementation is tested with (trillian, Go).
CT_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
             "606162636465666768696a6b6c6d6e6f"]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def definition_root(hashes):
    """MTH written as RFC 9162 states it, recursively: the slow, obvious reference."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = merkle.split_point(len(hashes))
    return merkle.node_hash(definition_root(hashes[:k]), definition_root(hashes[k:]))


def leaves(n):
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_certificate_transparency_vectors(size):
    hashed = [merkle.leaf_hash(bytes.fromhex(leaf)) for leaf in CT_LEAVES[:size]]
    assert merkle.root(hashed).hex() == CT_ROOTS[size - 1]


def test_the_empty_tree_has_the_hash_of_nothing():
    assert merkle.root([]) == hashlib.sha256(b"").digest()


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=70))
def test_frontier_and_root_agree_with_the_definition(size):
    hashed = leaves(size)
    assert merkle.root(hashed) == definition_root(hashed)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=40), st.data())
def test_every_inclusion_proof_verifies_and_a_wrong_one_does_not(size, data):
    hashed = leaves(size)
    top = merkle.root(hashed)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = merkle.inclusion_proof(index, size, merkle.list_subtree(hashed))
    assert merkle.verify_inclusion(hashed[index], index, size, proof, top)
    assert len(proof) <= size.bit_length()
    assert not merkle.verify_inclusion(merkle.leaf_hash(b"forged"), index, size, proof, top)
    if size > 1:
        other = (index + 1) % size
        assert not merkle.verify_inclusion(hashed[index], other, size, proof, top)
        assert not merkle.verify_inclusion(hashed[index], index, size, proof[:-1], top)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=40), st.data())
def test_every_consistency_proof_verifies_and_a_rewritten_past_does_not(new_size, data):
    hashed = leaves(new_size)
    old_size = data.draw(st.integers(min_value=1, max_value=new_size))
    old_root, new_root = merkle.root(hashed[:old_size]), merkle.root(hashed)
    proof = merkle.consistency_proof(old_size, new_size, merkle.list_subtree(hashed))
    assert merkle.verify_consistency(old_size, new_size, old_root, new_root, proof)
    rewritten = list(hashed)
    rewritten[data.draw(st.integers(min_value=0, max_value=old_size - 1))] = b"\x01" * 32
    assert not merkle.verify_consistency(old_size, new_size, merkle.root(rewritten[:old_size]),
                                         new_root, proof)


def test_leaf_bytes_change_with_every_field():
    from uuid import UUID
    base = dict(position=7, originator_id=UUID(int=1), originator_version=2, topic="t",
                state=b"{}")
    original = merkle.leaf_bytes(**base)
    for field, other in [("position", 8), ("originator_id", UUID(int=2)),
                         ("originator_version", 3), ("topic", "u"), ("state", b"{ }")]:
        assert merkle.leaf_bytes(**{**base, field: other}) != original


def test_a_head_verifies_only_with_its_key_and_its_own_fields():
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    top = merkle.root(leaves(5))
    at = "2026-11-23T13:00:00.000000+00:00"
    head = merkle.SignedHead(5, top, at, key.sign(merkle.head_message(5, top, at)))
    assert merkle.verify_head(public, head)
    assert not merkle.verify_head(public, merkle.SignedHead(6, top, at, head.signature))
    stranger = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw,
                                                                     PublicFormat.Raw)
    assert not merkle.verify_head(stranger, head)
    assert not merkle.verify_head(b"short", head)
