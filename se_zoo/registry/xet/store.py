"""Xet data on disk: verified xorbs, file reconstructions, and the indexes dedup and commits use.

Layout under ``<root>/xet/``::

    xorbs/<aa>/<hash>         a xorb's chunk records exactly as uploaded (any footer dropped)
    xorbs/<aa>/<hash>.json    its chunk index: [[chunk hash, record offset, record size, size], ...]
    files/<aa>/<hash>.json    a file reconstruction: {"sha256", "size", "terms": [[xorb, start, end, size]]}
    sha256/<aa>/<sha256>      the Xet hash of the file with this sha256 (how a commit finds its bytes)
    chunks/<aa>/<hash>        the xorb holding this chunk, for the chunks clients ask the dedup query about

Hashes are in Xet hex form (``hashing.hash_hex``). Every file is written to the process's folder
under ``<root>/tmp/`` (removed once the process is gone), fsynced and renamed into place; a xorb's
body is renamed before its index, and the index is what makes the xorb exist, so a crash leaves
nothing half-visible. Content is verified before anything is written: xorbs against their hash,
shards against the stored xorbs, reconstructed files against the sha256 the commit names.
"""
import json
import os
import uuid
from pathlib import Path
from typing import BinaryIO, Dict, Iterator, List, Optional

from ..store.storage import BadRequest, Store, fsync_dir
from .hashing import file_hash, global_dedup_eligible, hash_from_hex, hash_hex, range_hash
from .shard import FileInfo, Shard, XorbInfo
from .xorb import HEADER_SIZE, ChunkRecord, body_length, decompress_chunk, parse_xorb, read_chunk_header


class MissingXorb(BadRequest):
    """A shard names a xorb that was never uploaded."""


class XetStore:
    """The ``<root>/xet/`` part of a registry store (see the module docstring).

    Args:
        root: The registry root.
        store: The registry's blob store, where ``materialize`` puts rebuilt files; may be omitted by
            callers that only inspect the Xet data, and cannot write then.
    """

    def __init__(self, root: Path, store: Optional[Store] = None):
        self.store = store
        self.tmp = store.tmp.path if store is not None else None  # this process's temporary folder
        self.root = Path(root) / "xet"  # created by the first Xet upload

    # paths
    def path_of(self, kind: str, hex_hash: str, suffix: str = "") -> Path:
        """Where an object lives: ``kind`` is ``xorbs``, ``chunks`` or ``files``; ``suffix`` e.g. ``.json``."""
        return self.root / kind / hex_hash[:2] / f"{hex_hash}{suffix}"

    def _publish(self, final: Path, write: "callable") -> None:
        tmp = self.tmp / f"xet-{uuid.uuid4().hex}"
        try:
            with open(tmp, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(final.parent)

    def _publish_json(self, final: Path, value) -> None:
        self._publish(final, lambda f: f.write(json.dumps(value, separators=(",", ":")).encode()))

    # xorbs
    def has_xorb(self, xorb_hex: str) -> bool:
        """Whether the xorb was uploaded and verified."""
        return self.path_of("xorbs", xorb_hex, ".json").exists()

    def xorb_index(self, xorb_hex: str) -> List[ChunkRecord]:
        """The chunk records of a stored xorb.

        Raises:
            MissingXorb: if the xorb is not stored.
        """
        try:
            rows = json.loads(self.path_of("xorbs", xorb_hex, ".json").read_bytes())
        except FileNotFoundError:
            raise MissingXorb(f"Xorb {xorb_hex} was not uploaded; upload xorbs before the shard naming them.") from None
        records, unpacked = [], 0
        for chunk, offset, record_size, size in rows:
            records.append(ChunkRecord(hash_from_hex(chunk), offset, record_size, size, unpacked))
            unpacked += size
        return records

    def add_xorb(self, xorb_hex: str, spool: Path) -> bool:
        """Verify an uploaded xorb body and store it.

        Args:
            xorb_hex: The hash the client uploads it as.
            spool: The received body, a file in ``<root>/tmp``; it is moved into place when it holds
                chunk records only (the usual case), else its chunk records are copied.

        Returns:
            ``True`` if it was new, ``False`` if that xorb was already stored.

        Raises:
            BadRequest: if the body is malformed or does not hash to ``xorb_hex``.
        """
        length = spool.stat().st_size
        with open(spool, "rb") as body:
            records = parse_xorb(body, length, hash_from_hex(xorb_hex))
            if self.has_xorb(xorb_hex):
                return False
            stored = body_length(records)

            def copy(out: BinaryIO) -> None:
                body.seek(0)
                remaining = stored
                while remaining:
                    block = body.read(min(1 << 20, remaining))
                    out.write(block)
                    remaining -= len(block)

            final = self.path_of("xorbs", xorb_hex)
            if stored == length:
                os.fsync(body.fileno())
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(spool, final)
                fsync_dir(final.parent)
            else:
                self._publish(final, copy)
        for record in records[:1] + [r for r in records[1:] if global_dedup_eligible(r.hash)]:
            self._publish(self.path_of("chunks", hash_hex(record.hash)), lambda f: f.write(xorb_hex.encode()))
        rows = [[hash_hex(r.hash), r.offset, r.record_size, r.size] for r in records]
        self._publish_json(self.path_of("xorbs", xorb_hex, ".json"), rows)
        return True

    def read_chunks(self, xorb_hex: str, start: int, end: int) -> Iterator[bytes]:
        """The uncompressed chunks ``[start, end)`` of a stored xorb, one at a time."""
        records = self.xorb_index(xorb_hex)
        with open(self.path_of("xorbs", xorb_hex), "rb") as f:
            f.seek(records[start].offset)
            for _ in range(start, end):
                compressed, scheme, size = read_chunk_header(f.read(HEADER_SIZE))
                yield decompress_chunk(scheme, f.read(compressed), size)

    def xorb_path(self, xorb_hex: str) -> Path:
        """Where a xorb's chunk records are stored."""
        return self.path_of("xorbs", xorb_hex)

    # dedup
    def dedup_xorb(self, chunk_hex: str) -> Optional[XorbInfo]:
        """The stored xorb holding this chunk, if the chunk is indexed for dedup."""
        try:
            xorb_hex = self.path_of("chunks", chunk_hex).read_text()
            records = self.xorb_index(xorb_hex)
        except (FileNotFoundError, MissingXorb):
            return None
        stored = body_length(records)
        return XorbInfo(hash_from_hex(xorb_hex), [(r.hash, r.unpacked_offset, r.size) for r in records], stored)

    # shards and files
    def add_shard(self, shard: Shard) -> int:
        """Verify a parsed shard against the stored xorbs and register its files.

        Every xorb it lists must be stored with the same chunks; every file term must name a stored
        xorb, a chunk range inside it and that range's unpacked size; verification hashes and the file
        hash must match the chunks. Nothing is registered unless everything checks out.

        Returns:
            The number of files registered.

        Raises:
            BadRequest: naming the first inconsistency.
        """
        for info in shard.xorbs:
            xorb_hex = hash_hex(info.xorb)
            records = self.xorb_index(xorb_hex)
            if [(c[0], c[2]) for c in info.chunks] != [(r.hash, r.size) for r in records]:
                raise BadRequest(f"Shard lists xorb {xorb_hex} with chunks other than the uploaded ones.")
        entries = [self._check_file(info) for info in shard.files]
        for info, entry in zip(shard.files, entries):
            self._publish_json(self.path_of("files", hash_hex(info.file_hash), ".json"), entry)
            if entry["sha256"]:
                file_hex = hash_hex(info.file_hash).encode()
                self._publish(self.path_of("sha256", entry["sha256"]), lambda f, h=file_hex: f.write(h))
        return len(entries)

    def _check_file(self, info: FileInfo) -> Dict:
        name = hash_hex(info.file_hash)
        leaves, terms = [], []
        indexes: Dict[str, List[ChunkRecord]] = {}
        for number, term in enumerate(info.terms):
            xorb_hex = hash_hex(term.xorb)
            records = indexes.get(xorb_hex) or indexes.setdefault(xorb_hex, self.xorb_index(xorb_hex))
            if not 0 <= term.start < term.end <= len(records):
                raise BadRequest(f"File {name} term {number}: chunk range [{term.start}, {term.end}) is outside "
                                 f"xorb {xorb_hex}, which has {len(records)} chunks.")
            chunks = records[term.start:term.end]
            size = sum(r.size for r in chunks)
            if size != term.size:
                raise BadRequest(f"File {name} term {number}: says {term.size} bytes, chunks [{term.start}, "
                                 f"{term.end}) of xorb {xorb_hex} hold {size}.")
            if info.range_hashes is not None and range_hash([r.hash for r in chunks]) != info.range_hashes[number]:
                raise BadRequest(f"File {name} term {number}: verification hash does not match the chunks.")
            leaves += [(r.hash, r.size) for r in chunks]
            terms.append([xorb_hex, term.start, term.end, size])
        if not terms or hash_hex(file_hash(leaves)) != name:
            raise BadRequest(f"File {name}: its terms' chunks hash to {hash_hex(file_hash(leaves))}, "
                             "not to the file hash.")
        sha256 = hash_hex(info.sha256) if info.sha256 is not None else None
        return {"sha256": sha256, "size": sum(t[3] for t in terms), "terms": terms}

    def file_entry(self, file_hex: str) -> Optional[Dict]:
        """The registered reconstruction of a file, or ``None``."""
        try:
            return json.loads(self.path_of("files", file_hex, ".json").read_bytes())
        except FileNotFoundError:
            return None

    def file_for_sha256(self, sha256: str) -> Optional[str]:
        """The Xet hash of the registered file with this sha256, or ``None``."""
        try:
            return self.path_of("sha256", sha256).read_text()
        except FileNotFoundError:
            return None

    def materialize(self, sha256: str, size: Optional[int], replace: bool = False) -> bool:
        """Rebuild a file uploaded through Xet as a normal blob of the store, streaming chunk by chunk.

        Args:
            sha256: The sha256 the commit names.
            size: The size the commit names, if any.
            replace: Replace a stored blob of that sha256 (``fsck --repair`` of a damaged one).

        Returns:
            ``True`` if the blob is now stored; ``False`` if no Xet upload has that sha256 (or size).

        Raises:
            BadRequest: if the rebuilt bytes do not hash to ``sha256`` (nothing is stored then).
            RuntimeError: if this ``XetStore`` was made without a blob store.
        """
        if self.store is None:
            raise RuntimeError("XetStore.materialize needs the registry's Store.")
        file_hex = self.file_for_sha256(sha256)
        entry = self.file_entry(file_hex) if file_hex else None
        if entry is None or (size is not None and entry["size"] != size):
            return False
        with self.store.blob_writer(max_size=entry["size"]) as writer:
            for xorb_hex, start, end, _ in entry["terms"]:
                for chunk in self.read_chunks(xorb_hex, start, end):
                    writer.write(chunk)
            try:
                writer.commit(sha256, entry["size"], replace=replace)
            except BadRequest as exc:
                raise BadRequest(f"The Xet upload registered for sha256 {sha256} rebuilds to other bytes: "
                                 f"{exc}") from None
        return True

    def files(self) -> Iterator[str]:
        """The Xet hashes of all registered files."""
        for path in (self.root / "files").glob("*/*.json"):
            yield path.name[: -len(".json")]

    def xorbs(self) -> Iterator[str]:
        """The hashes of all stored xorbs (index present)."""
        for path in (self.root / "xorbs").glob("*/*.json"):
            yield path.name[: -len(".json")]

    def remove_xorb(self, xorb_hex: str) -> None:
        """Delete a xorb: its index first (so it stops existing), then its body."""
        self.path_of("xorbs", xorb_hex, ".json").unlink(missing_ok=True)
        self.path_of("xorbs", xorb_hex).unlink(missing_ok=True)
