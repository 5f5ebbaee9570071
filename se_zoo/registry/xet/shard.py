"""Shards (the MDB format): parse what clients upload, build what the dedup query answers.

Layout (all integers little-endian, every entry 48 bytes)::

    header       32-byte tag, u64 version (2), u64 footer size
    file info    per file: header (file hash, u32 flags, u32 entry count, 8 unused bytes), its terms
                 (xorb hash, u32 xorb flags, u32 unpacked bytes, u32 first chunk, u32 end chunk), then
                 when flagged one verification entry per term (range hash + 16 unused bytes) and one
                 metadata entry (the file's sha256 + 16 unused bytes); ended by an all-0xff hash
    xorb info    per xorb: header (xorb hash, u32 flags, u32 chunk count, u32 unpacked bytes, u32 stored
                 bytes), then per chunk (chunk hash, u32 unpacked offset, u32 size, u32 flags, u32 unused);
                 ended by an all-0xff hash
    [lookup tables and a 200-byte footer: present in stored shards, absent from uploaded ones]
"""
import struct
import time
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

from ..store.storage import BadRequest
from .hashing import truncated

HEADER_TAG = bytes([72, 70, 82, 101, 112, 111, 77, 101, 116, 97, 68, 97, 116, 97, 0, 85, 105, 103, 69, 106, 123,
                    129, 87, 131, 165, 189, 217, 92, 205, 209, 74, 169])
HEADER_SIZE = 48
ENTRY_SIZE = 48
FOOTER_SIZE = 200
_BOOKEND = b"\xff" * 32
_WITH_VERIFICATION = 1 << 31
_WITH_METADATA = 1 << 30
_ENTRY = struct.Struct("<32sIIII")  # hash + four u32 (both file terms and xorb entries)
_FILE_HEADER = struct.Struct("<32sIIQ")


@dataclass(frozen=True)
class Term:
    """A run of chunks ``[start, end)`` of one xorb, ``size`` bytes once unpacked."""

    xorb: bytes
    size: int
    start: int
    end: int


@dataclass
class FileInfo:
    """One file's reconstruction as a shard describes it."""

    file_hash: bytes
    terms: List[Term]
    range_hashes: Optional[List[bytes]] = None
    sha256: Optional[bytes] = None


@dataclass
class XorbInfo:
    """A xorb's chunk list as a shard describes it: ``(chunk hash, unpacked offset, size)``."""

    xorb: bytes
    chunks: List[tuple] = field(default_factory=list)
    stored_bytes: int = 0


@dataclass
class Shard:
    """The file and xorb sections of a shard."""

    files: List[FileInfo]
    xorbs: List[XorbInfo]


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, HEADER_SIZE

    def entry(self, what: str) -> bytes:
        if self.pos + ENTRY_SIZE > len(self.data):
            raise BadRequest(f"Shard ends inside its {what} section at byte {self.pos}.")
        raw = self.data[self.pos:self.pos + ENTRY_SIZE]
        self.pos += ENTRY_SIZE
        return raw


def parse_shard(data: bytes) -> Shard:
    """Parse the file and xorb sections of a serialized shard.

    Args:
        data: The shard bytes (with or without lookup tables and footer).

    Returns:
        The files and xorbs it describes.

    Raises:
        BadRequest: if the tag, version or structure is wrong (message names the byte offset).
    """
    if len(data) < HEADER_SIZE or data[:32] != HEADER_TAG:
        raise BadRequest("Shard does not start with the MDB shard tag.")
    version = struct.unpack_from("<Q", data, 32)[0]
    if version != 2:
        raise BadRequest(f"Shard header version is {version}, expected 2.")
    reader = _Reader(data)
    files: List[FileInfo] = []
    while (raw := reader.entry("file info"))[:32] != _BOOKEND:
        file_hash, flags, count, _ = _FILE_HEADER.unpack(raw)
        terms = [Term(*_term(reader.entry("file info"))) for _ in range(count)]
        info = FileInfo(file_hash, terms)
        if flags & _WITH_VERIFICATION:
            info.range_hashes = [reader.entry("file info")[:32] for _ in range(count)]
        if flags & _WITH_METADATA:
            info.sha256 = reader.entry("file info")[:32]
        files.append(info)
    xorbs: List[XorbInfo] = []
    while (raw := reader.entry("xorb info"))[:32] != _BOOKEND:
        xorb, _flags, count, _unpacked, stored = _ENTRY.unpack(raw)
        info = XorbInfo(xorb, stored_bytes=stored)
        for _ in range(count):
            chunk, offset, size, _cflags, _ = _ENTRY.unpack(reader.entry("xorb info"))
            info.chunks.append((chunk, offset, size))
        xorbs.append(info)
    return Shard(files, xorbs)


def _term(raw: bytes) -> tuple:
    xorb, _flags, size, start, end = _ENTRY.unpack(raw)
    return xorb, size, start, end


def build_dedup_shard(xorbs: Sequence[XorbInfo], expiry_seconds: int = 3600) -> bytes:
    """A complete shard (with lookup tables and footer) listing ``xorbs``, as the dedup query answers.

    Args:
        xorbs: The xorbs whose chunks the client may reuse.
        expiry_seconds: How long the client may rely on the answer.

    Returns:
        The serialized shard.
    """
    xorbs = sorted(xorbs, key=lambda x: struct.unpack("<4Q", x.xorb))
    parts = [HEADER_TAG, struct.pack("<QQ", 2, FOOTER_SIZE), _BOOKEND + bytes(16)]
    xorb_info_offset = HEADER_SIZE + ENTRY_SIZE
    xorb_lookup, chunk_lookup, index = [], [], 0
    for info in xorbs:
        unpacked = sum(size for _, _, size in info.chunks)
        parts.append(_ENTRY.pack(info.xorb, 0, len(info.chunks), unpacked, info.stored_bytes))
        xorb_lookup.append((truncated(info.xorb), index))
        for i, (chunk, offset, size) in enumerate(info.chunks):
            parts.append(_ENTRY.pack(chunk, offset, size, 0, 0))
            chunk_lookup.append((truncated(chunk), index, i))
        index += 1 + len(info.chunks)
    parts.append(_BOOKEND + bytes(16))
    pos = sum(len(p) for p in parts)
    file_lookup_offset = xorb_lookup_offset = pos
    parts += [struct.pack("<QI", key, value) for key, value in xorb_lookup]
    chunk_lookup_offset = xorb_lookup_offset + 12 * len(xorb_lookup)
    parts += [struct.pack("<QII", *entry) for entry in sorted(chunk_lookup)]
    footer_offset = chunk_lookup_offset + 16 * len(chunk_lookup)
    now = int(time.time())
    footer = struct.pack("<9Q", 1, HEADER_SIZE, xorb_info_offset, file_lookup_offset, 0, xorb_lookup_offset,
                         len(xorb_lookup), chunk_lookup_offset, len(chunk_lookup))
    footer += bytes(32) + struct.pack("<QQ", now, now + expiry_seconds) + bytes(48)
    footer += struct.pack("<4Q", 0, 0, 0, footer_offset)
    assert len(footer) == FOOTER_SIZE
    return b"".join(parts) + footer
