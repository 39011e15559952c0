"""The Merkle tree over the event log, as RFC 9162 (Certificate Transparency 2.0) defines it.

Leaf *i* of the tree is the *i*-th stored event in log order; its bytes (``leaf_bytes``) are
the event's position, stream, version, topic and stored state, each length-prefixed, so that
an edit, a deletion, an insertion or a reordering of the log changes the root. A signed head
(size, root, time) is an Ed25519 signature over ``head_message``.

This module needs only the standard library and ``cryptography``: a third party checks proofs
with it without the operator's server, so it imports nothing else of Quanyi.

    leaf hash  = SHA-256(0x00 || leaf bytes)
    node hash  = SHA-256(0x01 || left || right)
    MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two below n
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

EMPTY_ROOT = hashlib.sha256(b"").digest()
HEAD_PREFIX = b"quanyi-audit-head-v1\n"

# subtree(start, end) -> MTH of leaves[start:end]; lets a caller serve proofs from stored nodes.
Subtree = Callable[[int, int], bytes]


def leaf_bytes(position: int, originator_id: UUID, originator_version: int, topic: str,
               state: bytes) -> bytes:
    """The canonical bytes of one stored event at one position of the log."""
    topic_bytes = topic.encode("utf-8")
    return b"".join((
        struct.pack(">Q", position), originator_id.bytes,
        struct.pack(">Q", originator_version),
        struct.pack(">I", len(topic_bytes)), topic_bytes,
        struct.pack(">I", len(state)), state,
    ))


_LEAF_FIXED = struct.Struct(">Q16sQI")
_LENGTH = struct.Struct(">I")


def leaf_bytes_raw(position: int, originator_id: bytes, originator_version: int, topic: str,
                   state: bytes) -> bytes:
    """``leaf_bytes`` with the stream id given as its 16 bytes: the same bytes, for a reader
    of raw rows that would otherwise make a UUID per event only to take its bytes."""
    topic_bytes = topic.encode("utf-8")
    return b"".join((_LEAF_FIXED.pack(position, originator_id, originator_version,
                                      len(topic_bytes)),
                     topic_bytes, _LENGTH.pack(len(state)), state))


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(size: int) -> int:
    """The largest power of two strictly below ``size`` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of the given leaf hashes, in O(n) hashing without recursion."""
    if not leaf_hashes:
        return EMPTY_ROOT
    frontier = Frontier()
    for hashed in leaf_hashes:
        frontier.append(hashed)
    return frontier.root()


class Frontier:
    """The roots of the perfect subtrees along the right edge of a growing tree.

    Appending a leaf costs O(log n) amortised hashes and the root is O(log n): a follower
    keeps only this to extend the tree behind the writer."""

    def __init__(self, size: int = 0, peaks: Sequence[bytes] = ()) -> None:
        if len(peaks) != bin(size).count("1"):
            raise ValueError("a frontier has one peak per set bit of its size")
        self.size = size
        self.peaks = list(peaks)  # largest subtree first

    def append(self, hashed: bytes) -> None:
        self.peaks.append(hashed)
        size = self.size
        while size & 1:  # each carry merges two equal perfect subtrees
            right = self.peaks.pop()
            self.peaks[-1] = node_hash(self.peaks[-1], right)
            size >>= 1
        self.size += 1

    def root(self) -> bytes:
        if not self.peaks:
            return EMPTY_ROOT
        result = self.peaks[-1]
        for peak in reversed(self.peaks[:-1]):
            result = node_hash(peak, result)
        return result


def list_subtree(leaf_hashes: Sequence[bytes]) -> Subtree:
    """A ``Subtree`` over leaf hashes held in memory (tests, bundles, small logs)."""
    return lambda start, end: root(leaf_hashes[start:end])


def inclusion_proof(index: int, size: int, subtree: Subtree) -> list[bytes]:
    """PATH(index, D[size]) of RFC 9162 section 2.1.3.1, leaf side first."""
    if not 0 <= index < size:
        raise ValueError("leaf index outside the tree")
    return _path(index, 0, size, subtree)


def _path(index: int, start: int, end: int, subtree: Subtree) -> list[bytes]:
    if end - start == 1:
        return []
    middle = start + split_point(end - start)
    if start + index < middle:
        return _path(index, start, middle, subtree) + [subtree(middle, end)]
    return _path(index - (middle - start), middle, end, subtree) + [subtree(start, middle)]


def consistency_proof(old_size: int, new_size: int, subtree: Subtree) -> list[bytes]:
    """PROOF(old_size, D[new_size]) of RFC 9162 section 2.1.4.1."""
    if not 0 < old_size <= new_size:
        raise ValueError("a consistency proof needs 0 < old size <= new size")
    if old_size == new_size:
        return []
    return _subproof(old_size, 0, new_size, True, subtree)


def _subproof(m: int, start: int, end: int, whole: bool, subtree: Subtree) -> list[bytes]:
    if m == end - start:
        return [] if whole else [subtree(start, end)]
    middle = start + split_point(end - start)
    if m <= middle - start:
        return _subproof(m, start, middle, whole, subtree) + [subtree(middle, end)]
    return (_subproof(m - (middle - start), middle, end, False, subtree)
            + [subtree(start, middle)])


def verify_inclusion(hashed_leaf: bytes, index: int, size: int, proof: Sequence[bytes],
                     expected_root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2: is this leaf hash at ``index`` of the tree with that root?"""
    if not 0 <= index < size:
        return False
    fn, sn, result = index, size - 1, hashed_leaf
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = node_hash(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and result == expected_root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2: is the tree of ``old_size`` a prefix of the newer one?"""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    path = list(proof)
    if not path:
        return False
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is itself a node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    first = second = path[0]
    for node in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            first, second = node_hash(node, first), node_hash(node, second)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            second = node_hash(second, node)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and first == old_root and second == new_root


@dataclass(frozen=True)
class SignedHead:
    """The log's size and root at an instant, signed by the audit key."""

    tree_size: int
    root_hash: bytes
    signed_at: str  # ISO 8601 UTC, as signed
    signature: bytes

    def message(self) -> bytes:
        return head_message(self.tree_size, self.root_hash, self.signed_at)


def head_message(tree_size: int, root_hash: bytes, signed_at: str) -> bytes:
    """The exact bytes an audit key signs for a head."""
    return HEAD_PREFIX + f"{tree_size}\n{root_hash.hex()}\n{signed_at}\n".encode("ascii")


def verify_head(public_key: bytes, head: SignedHead) -> bool:
    """Whether ``head`` was signed by the Ed25519 key whose raw public bytes are given."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(head.signature, head.message())
    except (InvalidSignature, ValueError):
        return False
    return True
