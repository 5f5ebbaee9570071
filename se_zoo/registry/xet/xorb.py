"""Xorb bodies: parse the serialized chunks a client uploads, decompress chunks, verify the xorb hash.

A serialized xorb is a sequence of chunk records, each an 8-byte header -- version (0), compressed
length (3 bytes, little-endian), compression scheme (0 none, 1 LZ4 frame, 2 LZ4 frame over the
4-way byte-grouped chunk), uncompressed length (3 bytes) -- followed by the compressed bytes. A
client may append the storage footer (starting with ``XETBLOB``); it is ignored, as everything it
holds is recomputed here from the chunks themselves.
"""
from dataclasses import dataclass
from typing import BinaryIO, List

import lz4.frame

from ..store.storage import BadRequest
from .hashing import chunk_hash, hash_hex, xorb_hash
from ..limits import MAX_CHUNK_SIZE

HEADER_SIZE = 8
FOOTER_IDENT = b"XETBLOB"
_SCHEMES = (0, 1, 2)


@dataclass(frozen=True)
class ChunkRecord:
    """Where one chunk lies in a stored xorb and what it holds."""

    hash: bytes
    offset: int  # byte offset of the chunk record (header included) in the xorb body
    record_size: int  # header + compressed bytes
    size: int  # uncompressed bytes
    unpacked_offset: int  # offset of the chunk in the xorb's uncompressed data


def bg4_regroup(grouped: bytes) -> bytes:
    """Undo the 4-way byte grouping: group ``i`` holds bytes ``i, i+4, i+8, ...`` of the chunk."""
    n = len(grouped)
    out = bytearray(n)
    start = 0
    for i in range(4):
        count = len(range(i, n, 4))
        out[i::4] = grouped[start:start + count]
        start += count
    return bytes(out)


def decompress_chunk(scheme: int, payload: bytes, size: int) -> bytes:
    """The uncompressed bytes of one chunk record.

    Args:
        scheme: The compression scheme byte of the record header.
        payload: The record's compressed bytes.
        size: The uncompressed length the header announces.

    Returns:
        The chunk's bytes.

    Raises:
        BadRequest: if the scheme is unknown, the data does not decompress or has another length.
    """
    try:
        if scheme == 0:
            data = payload
        elif scheme == 1:
            data = lz4.frame.decompress(payload)
        elif scheme == 2:
            data = bg4_regroup(lz4.frame.decompress(payload))
        else:
            raise BadRequest(f"Xorb chunk has unknown compression scheme {scheme}; expected one of {_SCHEMES}.")
    except RuntimeError as exc:  # lz4 reports corrupt frames as RuntimeError
        raise BadRequest(f"Xorb chunk does not decompress: {exc}") from None
    if len(data) != size:
        raise BadRequest(f"Xorb chunk decompresses to {len(data)} bytes, its header says {size}.")
    return data


def read_chunk_header(header: bytes) -> tuple:
    """``(compressed length, scheme, uncompressed length)`` of an 8-byte chunk header.

    Raises:
        BadRequest: on an unknown version or scheme, or lengths over the format's limits.
    """
    version, scheme = header[0], header[4]
    compressed = int.from_bytes(header[1:4], "little")
    size = int.from_bytes(header[5:8], "little")
    if version != 0:
        raise BadRequest(f"Xorb chunk header version is {version}, expected 0.")
    if scheme not in _SCHEMES:
        raise BadRequest(f"Xorb chunk has unknown compression scheme {scheme}; expected one of {_SCHEMES}.")
    if size == 0 or size > MAX_CHUNK_SIZE or compressed > 2 * MAX_CHUNK_SIZE:
        raise BadRequest(f"Xorb chunk lengths out of range: {compressed} compressed, {size} uncompressed "
                         f"(at most {MAX_CHUNK_SIZE} uncompressed).")
    return compressed, scheme, size


def parse_xorb(f: BinaryIO, length: int, expected_hash: bytes) -> List[ChunkRecord]:
    """Read a serialized xorb, recompute every chunk hash and the xorb hash.

    Reads one chunk at a time, so memory stays at one chunk whatever the xorb size.

    Args:
        f: The body, positioned at its start.
        length: The body's length in bytes.
        expected_hash: The xorb hash the client named the upload with.

    Returns:
        The chunk records, in order.

    Raises:
        BadRequest: if the body is malformed, empty, or its hash is not ``expected_hash``.
    """
    records: List[ChunkRecord] = []
    offset = unpacked = 0
    while offset < length:
        header = f.read(HEADER_SIZE)
        if header[:len(FOOTER_IDENT)] == FOOTER_IDENT[:len(header)] and len(header) >= 4:
            break  # the optional storage footer
        if len(header) < HEADER_SIZE:
            raise BadRequest(f"Xorb body ends inside a chunk header at byte {offset}.")
        compressed, scheme, size = read_chunk_header(header)
        payload = f.read(compressed)
        if len(payload) < compressed:
            raise BadRequest(f"Xorb body ends inside the chunk at byte {offset}.")
        digest = chunk_hash(decompress_chunk(scheme, payload, size))
        records.append(ChunkRecord(digest, offset, HEADER_SIZE + compressed, size, unpacked))
        offset += HEADER_SIZE + compressed
        unpacked += size
    if not records:
        raise BadRequest("Xorb body holds no chunk.")
    actual = xorb_hash([(r.hash, r.size) for r in records])
    if actual != expected_hash:
        raise BadRequest(f"Xorb content hashes to {hash_hex(actual)}, not to the hash {hash_hex(expected_hash)} "
                         "it was uploaded as.")
    return records


def body_length(records: List[ChunkRecord]) -> int:
    """Bytes of chunk records (the stored body, without any footer)."""
    last = records[-1]
    return last.offset + last.record_size
