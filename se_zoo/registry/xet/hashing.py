"""Xet hashes: chunk hashes, the aggregated (merkle) hash of xorbs and files, verification range hashes.

Every hash is 32 bytes, computed with BLAKE3 in keyed mode (the ``blake3`` package):

- a chunk hash is ``keyed_blake3(DATA_KEY, chunk bytes)``;
- a xorb hash is the root of an aggregated tree over ``(chunk hash, chunk size)`` leaves: each level
  is cut into groups of 2 to 9 nodes (a cut after the third node or later whose hash is 0 mod 4, or
  after 9 nodes), and a group's node is ``keyed_blake3(INTERNAL_NODE_KEY, "".join(f"{hex} : {size}\\n"))``
  with the size summed; this repeats until one node is left;
- a file hash is that root hashed once more with an all-zero key;
- a verification range hash (shards) is ``keyed_blake3(VERIFICATION_KEY, concatenated chunk hashes)``.

Hashes travel in hex as the reference implementation prints them: the 32 bytes read as four
little-endian u64 values, each printed as 16 hex digits (``hash_hex``/``hash_from_hex``).
"""
from typing import List, Sequence, Tuple

import blake3

DATA_KEY = bytes([
    102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28,
    157, 228, 33, 16, 155, 235, 43, 88, 180, 208, 176, 75, 147, 173, 242, 41,
])
INTERNAL_NODE_KEY = bytes([
    1, 126, 197, 199, 165, 71, 41, 150, 253, 148, 102, 102, 180, 138, 2, 230,
    93, 221, 83, 111, 55, 199, 109, 210, 248, 99, 82, 230, 74, 83, 113, 63,
])
VERIFICATION_KEY = bytes([
    127, 24, 87, 214, 206, 86, 237, 102, 18, 127, 249, 19, 231, 165, 195, 243,
    164, 205, 38, 213, 181, 219, 73, 230, 65, 36, 152, 127, 40, 251, 148, 195,
])
_ZERO_KEY = bytes(32)
_BRANCHING = 4
_MAX_GROUP = 2 * _BRANCHING + 1
GLOBAL_DEDUP_MODULUS = 1024

Leaf = Tuple[bytes, int]


def hash_hex(digest: bytes) -> str:
    """The Xet hex form of a 32-byte hash (each 8-byte word byte-reversed)."""
    return "".join(digest[i:i + 8][::-1].hex() for i in range(0, 32, 8))


def hash_from_hex(text: str) -> bytes:
    """The 32 bytes of a hash given in Xet hex form.

    Raises:
        ValueError: if ``text`` is not 64 hex digits.
    """
    if not isinstance(text, str) or len(text) != 64:
        raise ValueError(f"expected a 64-digit hex hash, got {text!r}")
    raw = bytes.fromhex(text)
    return b"".join(raw[i:i + 8][::-1] for i in range(0, 32, 8))


def _word(digest: bytes, index: int) -> int:
    return int.from_bytes(digest[8 * index:8 * index + 8], "little")


def truncated(digest: bytes) -> int:
    """The first little-endian u64 of a hash: the key of shard lookup tables."""
    return _word(digest, 0)


def global_dedup_eligible(digest: bytes) -> bool:
    """Whether clients ask the global dedup endpoint about this chunk hash (besides a file's first chunk)."""
    return _word(digest, 3) % GLOBAL_DEDUP_MODULUS == 0


def chunk_hash(data: bytes) -> bytes:
    """The hash of one chunk's (uncompressed) bytes."""
    return blake3.blake3(data, key=DATA_KEY).digest()


def _merge(group: Sequence[Leaf]) -> Leaf:
    text = "".join(f"{hash_hex(h)} : {size}\n" for h, size in group)
    return blake3.blake3(text.encode(), key=INTERNAL_NODE_KEY).digest(), sum(size for _, size in group)


def _next_cut(level: Sequence[Leaf], start: int) -> int:
    remaining = len(level) - start
    if remaining <= 2:
        return len(level)
    end = min(_MAX_GROUP, remaining)
    for i in range(2, end):
        if _word(level[start + i][0], 3) % _BRANCHING == 0:
            return start + i + 1
    return start + end


def aggregated_hash(leaves: Sequence[Leaf]) -> bytes:
    """The root of the aggregated hash tree over ``(chunk hash, size)`` leaves (32 zero bytes if none)."""
    if not leaves:
        return bytes(32)
    level: List[Leaf] = list(leaves)
    while len(level) > 1:
        merged, start = [], 0
        while start < len(level):
            cut = _next_cut(level, start)
            merged.append(_merge(level[start:cut]))
            start = cut
        level = merged
    return level[0][0]


def xorb_hash(leaves: Sequence[Leaf]) -> bytes:
    """The hash of a xorb holding these ``(chunk hash, size)`` chunks in order."""
    return aggregated_hash(leaves)


def file_hash(leaves: Sequence[Leaf]) -> bytes:
    """The Xet hash of a file made of these ``(chunk hash, size)`` chunks in order."""
    if not leaves:
        return bytes(32)
    return blake3.blake3(aggregated_hash(leaves), key=_ZERO_KEY).digest()


def range_hash(chunk_hashes: Sequence[bytes]) -> bytes:
    """The verification hash a shard records for one file term (its xorb chunks' hashes)."""
    return blake3.blake3(b"".join(chunk_hashes), key=VERIFICATION_KEY).digest()
