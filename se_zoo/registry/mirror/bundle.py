"""Bundles: mirrored repositories in one file, to carry into an air-gapped cluster by disk.

A bundle is a plain tar archive (``tar tf`` lists it): one member ``blobs/<sha256>`` per file
content, then ``manifest.json`` last, holding every repository's commit records, refs, visibility
and origin. The manifest being last makes completeness checkable: a bundle cut short has none
(or a member that runs past the end of the file) and is refused before anything is imported.

Writing is resumable and idempotent: an existing bundle (complete or cut short) is scanned, its
complete blobs are kept and skipped, the old manifest is dropped and a new one written after the
new blobs; a run that adds nothing leaves the file untouched. Importing checks every blob against
its sha256 (and regular files against their git blob id) before the target keeps it, and adopts
the commits only once every file of the bundle has arrived.
"""
import json
import os
import tarfile
from pathlib import Path
from typing import Any, BinaryIO, Dict, Iterator, Optional, Tuple

from .adopt import IntegrityMismatch, validate_record
from ..errors import CommandError, HubError
from ..store.storage import CHUNK_SIZE, BadRequest, validate_ref_name, validate_sha256
from .transfer import Stats, copy_file, split_repo_id

__all__ = ["BundleError", "BundleWriter", "import_bundle"]

FORMAT = "se-zoo-bundle/1"
MANIFEST = "manifest.json"
_BLOCK = tarfile.BLOCKSIZE


class BundleError(CommandError):
    """A bundle that is cut short, malformed or inconsistent; nothing was imported from it."""


def _padded(size: int) -> int:
    return -(-size // _BLOCK) * _BLOCK


def _scan(path: Path) -> Tuple[Dict[str, Tuple[int, int]], Optional[Dict[str, Any]], int]:
    """``(blobs, manifest, end)``: complete blob members (sha256 -> (data offset, size)), the manifest
    (None unless complete and last) and the offset after the last complete blob member."""
    blobs: Dict[str, Tuple[int, int]] = {}
    manifest, end = None, 0
    disk_size = path.stat().st_size if path.exists() else 0
    if disk_size == 0:
        return blobs, None, 0
    with open(path, "rb") as f:
        try:
            tar = tarfile.open(fileobj=f, mode="r:")
        except tarfile.TarError:
            return blobs, None, 0
        while True:
            try:
                member = tar.next()
            except tarfile.TarError:
                break
            if member is None or member.offset_data + member.size > disk_size:
                break
            if member.name == MANIFEST:
                if member.offset_data + _padded(member.size) + 2 * _BLOCK > disk_size:
                    break  # the end-of-archive blocks are missing: cut short
                try:
                    manifest = json.loads(tar.extractfile(member).read())
                except ValueError:
                    manifest = None
                break
            name = member.name.removeprefix("blobs/")
            if member.isfile() and member.name.startswith("blobs/") and len(name) == 64:
                blobs[name] = (member.offset_data, member.size)
            end = member.offset_data + _padded(member.size)
    return blobs, manifest, end


class BundleWriter:
    """A bundle file as a copy target (the ``Sink`` of ``se_zoo.registry.mirror.transfer``).

    Args:
        path: The bundle; an existing one is extended (complete) or resumed (cut short).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._blobs, old, end = _scan(self.path)
        self._old = old if isinstance(old, dict) and old.get("format") == FORMAT else None
        self._repos: Dict[str, Any] = json.loads(json.dumps(self._old["repos"])) if self._old else {}
        self._append_at = end
        self._file: Optional[BinaryIO] = None

    def _open(self) -> BinaryIO:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "r+b" if self.path.exists() else "w+b")
            self._file.truncate(self._append_at)  # drops the old manifest and any partial member
            self._file.seek(self._append_at)
        return self._file

    def has_commit(self, repo_id: str, commit: str) -> bool:
        """Whether the bundle describes ``commit`` of the repository."""
        return commit in self._repos.get(repo_id, {}).get("commits", {})

    def has_blob(self, sha256: str, size: int) -> bool:
        """Whether the bundle holds the blob complete."""
        return sha256 in self._blobs and self._blobs[sha256][1] == size

    def known_files(self, repo_id: str) -> Dict[str, Tuple[str, int]]:
        """Git blob id -> (sha256, size) of the repository's files the bundle holds."""
        found = {}
        for record in self._repos.get(repo_id, {}).get("commits", {}).values():
            for entry in record["files"].values():
                if self.has_blob(entry["sha256"], entry["size"]):
                    found[entry["oid"]] = (entry["sha256"], entry["size"])
        return found

    def put_blob(self, sha256: str, size: int, chunks: Iterator[bytes]) -> None:
        """Append a blob member; on any error the file is cut back to where the member began."""
        f = self._open()
        start = f.tell()
        info = tarfile.TarInfo(f"blobs/{validate_sha256(sha256)}")
        info.size, info.mode = size, 0o644
        try:
            f.write(info.tobuf(tarfile.PAX_FORMAT))
            offset_data = f.tell()
            for chunk in chunks:
                f.write(chunk)
            if f.tell() - offset_data != size:
                raise BadRequest(f"Blob {sha256}: {f.tell() - offset_data} bytes written, {size} expected.")
            f.write(b"\0" * (_padded(size) - size))
        except BaseException:
            f.seek(start)
            f.truncate()
            raise
        self._blobs[sha256] = (offset_data, size)
        self._append_at = f.tell()

    def adopt(self, repo_id: str, record: Optional[Dict[str, Any]], commit: str, refs: Dict[str, Dict[str, str]],
              private: bool, origin: str) -> None:
        """Describe ``record`` (None: the described ``commit``) in the manifest and point ``refs`` at it."""
        repo = self._repos.setdefault(repo_id, {"private": private, "origin": origin, "commits": {},
                                                "refs": {"branches": {}, "tags": {}}})
        if record is not None:
            repo["commits"][commit] = record
            repo["private"], repo["origin"] = private, origin
        for kind, names in refs.items():
            repo["refs"][kind].update(names)

    def abort(self) -> None:
        """Close without a manifest: a bundle extended in part stays marked incomplete (and resumable)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def close(self) -> None:
        """Write the manifest last (unless nothing changed) and close the file."""
        manifest = {"format": FORMAT, "blobs": {sha: size for sha, (_, size) in sorted(self._blobs.items())},
                    "repos": self._repos}
        if self._file is None and manifest == self._old:
            return  # nothing new: the bundle stays as it was
        f = self._open()
        data = json.dumps(manifest, sort_keys=True, indent=1).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mode = len(data), 0o644
        f.write(info.tobuf(tarfile.PAX_FORMAT) + data + b"\0" * (_padded(len(data)) - len(data)) + b"\0" * 2 * _BLOCK)
        f.truncate()
        f.flush()
        os.fsync(f.fileno())
        f.close()
        self._file = None


def _read_manifest(path: Path) -> Tuple[Dict[str, Tuple[int, int]], Dict[str, Any]]:
    if not path.is_file():
        raise CommandError(f"bundle {path} does not exist.")
    blobs, manifest, _ = _scan(path)
    if manifest is None:
        raise BundleError(f"bundle {path} is truncated or incomplete: it has no manifest at its end "
                          f"({path.stat().st_size} bytes); nothing was imported. Copy it again or resume "
                          "`se-zoo hub mirror --bundle` on it.")
    if manifest.get("format") != FORMAT or not isinstance(manifest.get("repos"), dict):
        raise BundleError(f"bundle {path}: manifest format {manifest.get('format')!r}, expected {FORMAT!r}.")
    for repo_id, repo in manifest["repos"].items():
        split_repo_id(repo_id)
        try:
            repo["commits"] = {commit: validate_record(record) for commit, record in repo["commits"].items()}
            for kind in ("branches", "tags"):
                for ref, target in repo["refs"][kind].items():
                    validate_ref_name(ref, "branch" if kind == "branches" else "tag")
                    if target not in repo["commits"]:
                        raise BadRequest(f"ref {ref!r} points at {target}, which the bundle does not describe")
        except (BadRequest, KeyError, TypeError, AttributeError) as exc:
            raise BundleError(f"bundle {path}: repository {repo_id} is malformed: {exc}") from None
        for record in repo["commits"].values():
            for file_path, entry in record["files"].items():
                if blobs.get(entry["sha256"], (0, -1))[1] != entry["size"]:
                    raise BundleError(f"bundle {path}: {repo_id} file {file_path} (blob {entry['sha256']}) "
                                      "is missing from the bundle; nothing was imported.")
    return blobs, manifest


def _member_reader(path: Path, offset: int, size: int):
    class _Reader:
        def __enter__(self) -> Iterator[bytes]:
            self.f = open(path, "rb")
            self.f.seek(offset)
            return self._chunks()

        def _chunks(self) -> Iterator[bytes]:
            left = size
            while left:
                chunk = self.f.read(min(CHUNK_SIZE, left))
                if not chunk:
                    raise BundleError(f"bundle {path} ended inside a blob.")
                left -= len(chunk)
                yield chunk

        def __exit__(self, *exc: Any) -> None:
            self.f.close()

    return _Reader()


def _verify_signed(path: Path, blobs: Dict[str, Tuple[int, int]], manifest: Dict[str, Any], trusted: Any) -> None:
    """Check every ref's commit of each repo ``trusted`` has keys for: its ``model.sig`` against them, and
    its files' sha256 against what it signs (the blobs themselves are checked against those on copy)."""
    from ..signing import SIGNATURE_NAME, SignatureError, check_files, verify_signature

    for repo_id, repo in sorted(manifest["repos"].items()):
        rule = trusted.keys_for(repo_id)
        if rule is None:
            continue
        for commit in sorted({c for kind in ("branches", "tags") for c in repo["refs"][kind].values()}):
            files = repo["commits"][commit]["files"]
            try:
                if SIGNATURE_NAME not in files:
                    raise SignatureError(f"{repo_id}: no {SIGNATURE_NAME}; the commit is unsigned")
                with _member_reader(path, *blobs[files[SIGNATURE_NAME]["sha256"]]) as chunks:
                    signed = verify_signature(b"".join(chunks), repo_id, rule[1])
                check_files(repo_id, signed, {p: e["sha256"] for p, e in files.items()})
            except SignatureError as exc:
                raise BundleError(f"bundle {path}: commit {commit} of {repo_id} is refused by the trust policy: "
                                  f"{exc}; nothing was imported.") from None


def import_bundle(path: Path, sink: Any, stats: Optional[Stats] = None, log=print, trusted: Any = None) -> Stats:
    """Load every repository of a bundle into ``sink``, checking each file.

    The whole bundle is checked for completeness first (a truncated one is refused with the target
    unchanged), then, with a trust policy, the signature of every ref's commit of each repo the policy
    covers; blobs the target holds are skipped; commits are adopted once all files arrived.

    Args:
        path: The bundle file.
        sink: ``StoreSink`` or ``RegistrySink``.
        stats: Accumulates what was written; a new one when None.
        log: Where to report each repository.
        trusted: A :class:`~se_zoo.registry.signing.TrustPolicy` (``--trusted-keys``), or None.

    Returns:
        The stats.

    Raises:
        BundleError: if the bundle is truncated, malformed or lacks a blob it describes, a commit a
            ref of a repo covered by ``trusted`` points at is unsigned, signed by an untrusted key or
            differs from what was signed (nothing is written then), or a blob member
            is damaged or refused by the target (one line naming the member and the problem); no
            commit is adopted then.
        CommandError: if the bundle does not exist.
    """
    path = Path(path)
    stats = stats or Stats()
    blobs, manifest = _read_manifest(path)
    if trusted is not None:
        _verify_signed(path, blobs, manifest, trusted)
    for repo_id, repo in sorted(manifest["repos"].items()):
        for record in repo["commits"].values():
            for file_path, entry in sorted(record["files"].items()):
                offset, size = blobs[entry["sha256"]]
                try:
                    copy_file(sink, file_path, entry, lambda o=offset, s=size: _member_reader(path, o, s), stats)
                except (IntegrityMismatch, HubError) as exc:
                    problem = str(exc).removeprefix(f"{file_path}: ")
                    raise BundleError(f"bundle {path}: member blobs/{entry['sha256']} ({repo_id} file {file_path}) "
                                      f"is refused: {problem}") from None
    for repo_id, repo in sorted(manifest["repos"].items()):
        for commit, record in repo["commits"].items():
            refs = {kind: {ref: c for ref, c in repo["refs"][kind].items() if c == commit}
                    for kind in ("branches", "tags")}
            sink.adopt(repo_id, record, commit, refs, bool(repo.get("private")), str(repo.get("origin") or path))
            stats.commits += 1
        log(f"{repo_id}: {len(repo['commits'])} commits imported")
    return stats
