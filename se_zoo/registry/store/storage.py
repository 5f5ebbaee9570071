"""On-disk store of the local Hub registry: content-addressed blobs, immutable commits, atomic refs.

One cohesive module (the ``Store`` and its on-disk format), longer than most for that reason.

Layout under the root directory::

    blobs/<aa>/<sha256>        file contents named by their sha256 (``aa`` = first two hex digits)
    tmp/<token>/               one process's uploads in progress (same filesystem as blobs/),
    tmp/<token>.lock           held by that process while it lives (``se_zoo.registry.store.locking``)
    locks/                     cross-process file locks (one per repository, one for blobs)
    signing.key                the key upload URLs are signed with, shared by every process
    repos/<namespace>/<name>/
        repo.json              {"private": bool, "createdAt": str}
        refs.json              {"branches": {name: commit}, "tags": {name: commit}}
        commits/<id>.json      one immutable commit: parents, message, date and its whole file tree
        downloads.log          one byte appended per download of the repository's weights files
        downloads.json         {"downloads": n}: the count kept by earlier versions (added to the log's)

Every file is written to a temporary name in its final directory, fsynced and moved into place with
``os.replace``, so a reader sees the old version or the new one, never a torn one. A blob is moved
into ``blobs/`` only after its sha256 and size were checked; a commit is written before the ref that
points at it, and the ref update is the single step that publishes it. A process killed at any point
therefore leaves no partial commit and no blob a later read could return, only stray files in
``tmp/`` (removed by the next process that starts), unreferenced blobs or an unreferenced commit
file (never served: commits are reached through refs, or by an id a client only learns once a ref
published it). ``se-zoo hub fsck --gc`` removes the unreferenced blobs (``se_zoo.registry.store.fsck``).

Several processes may share one root: refs and repository changes are serialized by file locks
(``se_zoo.registry.store.locking``), and each process only ever removes its own temporary files.
Repository ids are unique case-insensitively, as on the Hub: ``Org/Model`` and ``org/model`` name
the same repository, stored under the spelling it was created with.
"""
import base64
import hashlib
import json
import os
import secrets
import shutil
import uuid
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple

from ..errors import (  # noqa: F401 (re-exported: the store's public errors)
    BadRequest,
    Conflict,
    EntryNotFound,
    Forbidden,
    HubError,
    PreconditionFailed,
    RepoNotFound,
    RevisionNotFound,
)
from .locking import (
    ProcessTmp,
    blob_lock,
    file_lock,
    remove_dead_temporaries,
    repo_lock,
)
from .names import (  # noqa: F401 (re-exported)
    COMMIT_ID,
    REPO_PART,
    refuse_path_conflict,
    validate_path,
    validate_ref_name,
    validate_repo_part,
    validate_sha256,
)

LFS_THRESHOLD = 10 * 1024 * 1024  # larger files are stored as LFS, like the Hub does
DEFAULT_BRANCH = "main"
CHUNK_SIZE = 1024 * 1024

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt", ".onnx", ".h5", ".msgpack", ".gguf")


def now_iso() -> str:
    """The current UTC time in the Hub's format, e.g. ``2024-01-31T12:00:00.000000Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def git_blob_oid(data: bytes) -> str:
    """The git object id (sha1 of ``blob <size>\\0<data>``) of ``data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file that stands for an LFS object in git."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def upload_mode(size: int, sample: bytes) -> str:
    """``"lfs"`` for large or binary files (a NUL byte in the first 512 bytes), else ``"regular"``."""
    return "lfs" if size > LFS_THRESHOLD or b"\0" in sample else "regular"


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries to disk (after a rename or link into it); a no-op on Windows."""
    if os.name == "nt":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never a partial one."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def iso_to_timestamp(value: str) -> float:
    """Seconds since the epoch of a date written by ``now_iso``."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def dump_json(obj: Any) -> bytes:
    """``obj`` as compact JSON with sorted keys (the form every metadata file is written in)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


class BlobWriter:
    """Receives a blob chunk by chunk into ``tmp/`` and moves it into the store once verified.

    Use as ``with store.blob_writer() as w: w.write(chunk) ...; w.commit(sha256, size)``; leaving the
    ``with`` block without ``commit`` (or with an error) removes the temporary file.
    """

    def __init__(self, store: "Store", max_size: Optional[int] = None):
        self._store = store
        self._max_size = max_size
        self._hash = hashlib.sha256()
        self.size = 0
        self._path = store.tmp.path / f"{uuid.uuid4().hex}.part"
        self._file: BinaryIO = open(self._path, "wb")

    def write(self, chunk: bytes) -> None:
        """Append ``chunk``; raises ``BadRequest`` once more than ``max_size`` bytes arrived."""
        self.size += len(chunk)
        if self._max_size is not None and self.size > self._max_size:
            raise BadRequest(f"Upload is larger than the announced size of {self._max_size} bytes.")
        self._hash.update(chunk)
        self._file.write(chunk)

    def commit(self, expected_sha256: Optional[str] = None, expected_size: Optional[int] = None,
               replace: bool = False) -> str:
        """Verify what was written and move it into ``blobs/``.

        Args:
            expected_sha256: The sha256 the content must have (checked when given).
            expected_size: The size the content must have (checked when given).
            replace: Replace a stored blob of that sha256 (a repair of a damaged one) instead of
                keeping it; the rename is atomic, so readers see the old file or the new one.

        Returns:
            The sha256 of the content.

        Raises:
            BadRequest: if the size or the sha256 differ from the expected ones.
        """
        sha = self._hash.hexdigest()
        if expected_size is not None and self.size != expected_size:
            raise BadRequest(f"Upload has {self.size} bytes, {expected_size} were announced.")
        if expected_sha256 is not None and sha != expected_sha256:
            raise BadRequest(f"Upload content has sha256 {sha}, {expected_sha256} was announced.")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        final = self._store.blob_path(sha)
        if final.exists() and not replace:
            os.utime(final)  # fresh again: garbage collection leaves it to the commit that follows
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._path, final)
            fsync_dir(final.parent)
        return sha

    def close(self) -> None:
        """Drop the temporary file if it was not committed."""
        self._file.close()
        self._path.unlink(missing_ok=True)

    def __enter__(self) -> "BlobWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Store:
    """Repositories, commits, refs and blobs under one root directory (see the module docstring).

    Methods that change a repository take that repository's lock (shared by every process on the
    root); they block (disk I/O and fsync), so an async caller runs them in a worker thread.

    Args:
        root: The directory to keep everything in; created if missing.
    """

    def __init__(self, root: os.PathLike):
        self.root = Path(root).resolve()
        for sub in ("blobs", "tmp", "repos", "locks"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        remove_dead_temporaries(self.root / "tmp")  # left by processes that are gone, never live ones
        self.tmp = ProcessTmp(self.root / "tmp")

    def close(self) -> None:
        """Remove this process's temporary folder and release its lock."""
        self.tmp.release()

    def signing_key(self) -> bytes:
        """The key upload URLs are signed with, created once per root and shared by its processes."""
        path = self.root / "signing.key"
        if not path.exists():
            staged = self.tmp.path / "signing.key"
            staged.write_bytes(secrets.token_bytes(32))
            os.chmod(staged, 0o600)
            try:
                os.link(staged, path)  # fails if another process created it first: use theirs
            except FileExistsError:
                pass
            staged.unlink()
        return path.read_bytes()

    # blobs
    def blob_path(self, sha256: str) -> Path:
        """Where the blob with this sha256 lives (whether or not it exists)."""
        return self.root / "blobs" / sha256[:2] / validate_sha256(sha256)

    def has_blob(self, sha256: str, size: Optional[int] = None) -> bool:
        """Whether the blob is stored (with ``size`` bytes, when given)."""
        try:
            stored_size = self.blob_path(sha256).stat().st_size
        except FileNotFoundError:
            return False
        return size is None or stored_size == size

    def mark_fresh(self, sha256: str) -> bool:
        """Touch a stored blob so garbage collection spares it for its grace period.

        Returns:
            Whether the blob is stored.
        """
        with blob_lock(self.root):
            try:
                os.utime(self.blob_path(sha256))
            except FileNotFoundError:
                return False
        return True

    def blob_writer(self, max_size: Optional[int] = None) -> BlobWriter:
        """A new ``BlobWriter`` that refuses more than ``max_size`` bytes."""
        return BlobWriter(self, max_size)

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` as a blob and return its sha256."""
        with self.blob_writer() as writer:
            writer.write(data)
            return writer.commit()

    def _git_oid_of_blob(self, sha256: str, size: int) -> str:
        digest = hashlib.sha1(b"blob %d\0" % size)
        with open(self.blob_path(sha256), "rb") as f:
            while chunk := f.read(CHUNK_SIZE):
                digest.update(chunk)
        return digest.hexdigest()

    # repositories
    def _repo_dir(self, namespace: str, name: str) -> Path:
        """The repository's directory, found case-insensitively (its spelling at creation wins)."""
        repos = self.root / "repos"
        ns_dir = _find_dir(repos, validate_repo_part(namespace, "namespace"))
        validate_repo_part(name, "name")
        if ns_dir is None:
            return repos / namespace / name
        return _find_dir(ns_dir, name) or ns_dir / name

    def canonical_id(self, namespace: str, name: str) -> Tuple[str, str]:
        """The repository's id as spelled at creation; raises ``RepoNotFound``."""
        repo_dir = self._repo_dir(namespace, name)
        if not (repo_dir / "repo.json").exists():
            raise RepoNotFound(f"Repository {namespace}/{name} not found.")
        return repo_dir.parent.name, repo_dir.name

    def repo_meta(self, namespace: str, name: str) -> Dict[str, Any]:
        """``{"private": bool, "createdAt": str}`` of a repository; raises ``RepoNotFound``."""
        try:
            return json.loads((self._repo_dir(namespace, name) / "repo.json").read_bytes())
        except FileNotFoundError:
            raise RepoNotFound(f"Repository {namespace}/{name} not found.") from None

    def list_repos(self) -> List[Tuple[str, str, Dict[str, Any]]]:
        """All repositories as ``(namespace, name, meta)``, sorted by id."""
        found = []
        for repo_json in sorted((self.root / "repos").glob("*/*/repo.json")):
            namespace, name = repo_json.parent.parent.name, repo_json.parent.name
            if REPO_PART.fullmatch(namespace) and REPO_PART.fullmatch(name):
                try:
                    found.append((namespace, name, json.loads(repo_json.read_bytes())))
                except FileNotFoundError:
                    continue  # deleted meanwhile
        return found

    def repo_dirs(self) -> List[Path]:
        """The directory of every repository (for integrity checks and garbage collection)."""
        return [p.parent for p in sorted((self.root / "repos").glob("*/*/repo.json"))]

    def create_repo(self, namespace: str, name: str, private: bool) -> None:
        """Create a repository whose ``main`` branch holds an empty initial commit.

        The repository directory is assembled under a temporary name and renamed into place, so it
        appears complete or not at all.

        Raises:
            BadRequest: if the id is invalid.
            Conflict: if the repository exists (under any spelling of its id).
        """
        with repo_lock(self.root, namespace, name):
            # one directory per namespace, whatever spellings concurrent creations use
            with file_lock(self.root / "locks" / "namespaces" / f"{namespace.lower()}.lock"):
                final = self._repo_dir(namespace, name)
                final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                raise Conflict(f"Repository {final.parent.name}/{final.name} already exists.")
            staging = final.parent / f".create-{uuid.uuid4().hex}"
            try:
                (staging / "commits").mkdir(parents=True)
                created = now_iso()
                commit = self._new_commit(staging, [], {}, "initial commit", "", created)
                atomic_write(staging / "repo.json", dump_json({"private": bool(private), "createdAt": created}))
                atomic_write(staging / "refs.json", dump_json({"branches": {DEFAULT_BRANCH: commit}, "tags": {}}))
                os.rename(staging, final)
                fsync_dir(final.parent)
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    def delete_repo(self, namespace: str, name: str) -> List[str]:
        """Delete a repository and the blobs no other repository uses.

        A blob is kept if another repository's commit references it, or if it was uploaded or
        committed again after this repository's last commit (someone else is about to use it).

        Returns:
            The sha256 of the blobs removed.

        Raises:
            RepoNotFound: if the repository does not exist.
        """
        trash = self.tmp.path / f"deleted-{uuid.uuid4().hex}"
        with repo_lock(self.root, namespace, name):
            repo_dir = self._repo_dir(namespace, name)
            if not (repo_dir / "repo.json").exists():
                raise RepoNotFound(f"Repository {namespace}/{name} not found.")
            os.rename(repo_dir, trash)
        try:
            commits = list(_commit_files(trash))
            candidates = blobs_referenced_by(commits)
            last_use = max((iso_to_timestamp(_read_commit(c)["date"]) for c in commits), default=0.0)
            freed = []
            with blob_lock(self.root):
                candidates -= blobs_referenced_by(c for d in self.repo_dirs() for c in _commit_files(d))
                for sha in sorted(candidates):
                    path = self.blob_path(sha)
                    try:
                        if path.stat().st_mtime <= last_use:
                            path.unlink()
                            freed.append(sha)
                    except FileNotFoundError:
                        continue
            return freed
        finally:
            shutil.rmtree(trash, ignore_errors=True)

    def set_private(self, namespace: str, name: str, private: bool) -> None:
        """Change the visibility of a repository; raises ``RepoNotFound``."""
        with repo_lock(self.root, namespace, name):
            meta = self.repo_meta(namespace, name)
            meta["private"] = bool(private)
            atomic_write(self._repo_dir(namespace, name) / "repo.json", dump_json(meta))

    def count_download(self, namespace: str, name: str) -> None:
        """Add one to the repository's download count (its weights files fetched from the start).

        One byte is appended to ``downloads.log``: an ``O_APPEND`` write is atomic on POSIX
        filesystems, so several processes count without a lock, a read-modify-write or an fsync
        (a crash may lose the last counts, never the file). Windows appends under a file lock.
        """
        path = self._repo_dir(namespace, name) / "downloads.log"
        if os.name == "nt":
            with file_lock(self.root / "locks" / "downloads" / namespace.lower() / f"{name.lower()}.lock"):
                _append_byte(path)
        else:
            _append_byte(path)

    def downloads(self, namespace: str, name: str) -> int:
        """How many times the repository's weights files were downloaded."""
        repo_dir = self._repo_dir(namespace, name)
        try:
            count = os.stat(repo_dir / "downloads.log").st_size
        except FileNotFoundError:
            count = 0
        try:
            return count + json.loads((repo_dir / "downloads.json").read_bytes())["downloads"]
        except FileNotFoundError:
            return count

    # refs and commits
    def refs(self, namespace: str, name: str) -> Dict[str, Dict[str, str]]:
        """``{"branches": {name: commit}, "tags": {name: commit}}``; raises ``RepoNotFound``."""
        try:
            return json.loads((self._repo_dir(namespace, name) / "refs.json").read_bytes())
        except FileNotFoundError:
            raise RepoNotFound(f"Repository {namespace}/{name} not found.") from None

    def resolve(self, namespace: str, name: str, revision: str) -> str:
        """The commit id a branch, tag or commit id points to.

        Raises:
            RepoNotFound: if the repository does not exist.
            RevisionNotFound: if no branch, tag or commit matches ``revision``.
        """
        refs = self.refs(namespace, name)
        if revision in refs["branches"]:
            return refs["branches"][revision]
        if revision in refs["tags"]:
            return refs["tags"][revision]
        commits = self._repo_dir(namespace, name) / "commits"
        if COMMIT_ID.fullmatch(revision) and (commits / f"{revision}.json").exists():
            return revision
        raise RevisionNotFound(f"Revision {revision!r} not found in {namespace}/{name}.")

    def commit_info(self, namespace: str, name: str, commit: str) -> Dict[str, Any]:
        """The stored commit: ``id``, ``parents``, ``title``, ``message``, ``date`` and ``files``.

        ``files`` maps each path to ``{"sha256", "size", "oid", "lfs"}``.
        """
        return _read_commit(self._repo_dir(namespace, name) / "commits" / f"{commit}.json")

    def history(self, namespace: str, name: str, commit: str) -> Iterator[Dict[str, Any]]:
        """Commits from ``commit`` back to the first one, following first parents."""
        current: Optional[str] = commit
        while current is not None:
            info = self.commit_info(namespace, name, current)
            yield info
            current = info["parents"][0] if info["parents"] else None

    def _new_commit(self, repo_dir: Path, parents: List[str], files: Dict[str, Any], title: str,
                    message: str, date: str) -> str:
        body = {"parents": parents, "files": files, "title": title, "message": message, "date": date}
        commit = hashlib.sha1(dump_json(body)).hexdigest()
        atomic_write(repo_dir / "commits" / f"{commit}.json", dump_json({"id": commit, **body}))
        return commit

    def commit(self, namespace: str, name: str, branch: str, operations: List[Dict[str, Any]],
               title: str, message: str = "", parent: Optional[str] = None,
               check: Optional[Callable[[Dict[str, Any]], None]] = None) -> str:
        """Apply ``operations`` on top of ``branch`` as one new commit and move the branch to it.

        Args:
            namespace: Repository namespace.
            name: Repository name.
            branch: The branch to commit to; it must exist.
            operations: ``{"op": "add", "path", "sha256", "size", "lfs"}`` (the blob must be
                stored), ``{"op": "delete", "path"}`` or ``{"op": "delete_folder", "path"}``.
            title: First line of the commit message.
            message: The rest of the commit message.
            parent: When given, the commit the change is based on; the branch must still point to it.
            check: Called under the repository's lock with the files the commit will hold (path ->
                ``{"sha256", "size", "oid", "lfs"}``); whatever it raises refuses the commit, and
                nothing is written.

        Returns:
            The new commit id.

        Raises:
            RepoNotFound, RevisionNotFound: if the repository or the branch do not exist.
            BadRequest: if an added blob is missing.
            EntryNotFound: if a deleted file or folder does not exist.
            Conflict: if a path would be both a file and a folder.
            PreconditionFailed: if ``branch`` moved away from ``parent``.
        """
        with repo_lock(self.root, namespace, name):
            repo_dir = self._repo_dir(namespace, name)
            refs = self.refs(namespace, name)
            if branch not in refs["branches"]:
                raise RevisionNotFound(f"Branch {branch!r} not found in {namespace}/{name}; create it first.")
            head = refs["branches"][branch]
            if parent is not None and parent != head:
                raise PreconditionFailed(f"Branch {branch!r} is at {head}, not at the parent commit {parent}.")
            self._mark_blobs([op for op in operations if op["op"] == "add"])
            files = _apply(dict(self.commit_info(namespace, name, head)["files"]), operations, self._add_entry)
            refuse_path_conflict(files, [op["path"] for op in operations if op["op"] == "add"])
            if check is not None:
                check(files)
            commit = self._new_commit(repo_dir, [head], files, title, message, now_iso())
            refs["branches"][branch] = commit
            atomic_write(repo_dir / "refs.json", dump_json(refs))
            return commit

    def _add_entry(self, op: Dict[str, Any]) -> Dict[str, Any]:
        oid = (git_blob_oid(lfs_pointer(op["sha256"], op["size"])) if op["lfs"]
               else self._git_oid_of_blob(op["sha256"], op["size"]))
        return {"sha256": op["sha256"], "size": op["size"], "oid": oid, "lfs": op["lfs"]}

    def _mark_blobs(self, adds: List[Dict[str, Any]]) -> None:
        # under the blob lock, so garbage collection cannot remove a blob between check and commit
        with blob_lock(self.root):
            for op in adds:
                if not self.has_blob(op["sha256"], op["size"]):
                    raise BadRequest(f"Content of {op['path']!r} (sha256 {op['sha256']}) was not uploaded.")
                os.utime(self.blob_path(op["sha256"]))

    def set_ref(self, namespace: str, name: str, kind: str, ref: str, target: Optional[str],
                must_exist: bool) -> None:
        """Create (``must_exist=False``) or delete (``target=None, must_exist=True``) a branch or tag.

        Args:
            namespace: Repository namespace.
            name: Repository name.
            kind: ``"branches"`` or ``"tags"``.
            ref: The branch or tag name.
            target: The commit to point to, or ``None`` to delete the ref.
            must_exist: Whether the ref must exist already.

        Raises:
            Conflict: if the ref is created but a branch or tag of that name exists.
            RevisionNotFound: if the ref is deleted but does not exist.
            Forbidden: if the default branch would be deleted.
        """
        with repo_lock(self.root, namespace, name):
            refs = self.refs(namespace, name)
            exists = ref in refs[kind]
            label = "Tag" if kind == "tags" else "Branch"
            if must_exist and not exists:
                raise RevisionNotFound(f"{label} {ref!r} not found in {namespace}/{name}.")
            if not must_exist and (ref in refs["branches"] or ref in refs["tags"]):
                # one namespace for both kinds, so a revision name never means two commits
                raise Conflict(f"A branch or tag named {ref!r} already exists in {namespace}/{name}.")
            if target is None:
                if kind == "branches" and ref == DEFAULT_BRANCH:
                    raise Forbidden(f"The default branch {DEFAULT_BRANCH!r} cannot be deleted.")
                del refs[kind][ref]
            else:
                refs[kind][ref] = target
            atomic_write(self._repo_dir(namespace, name) / "refs.json", dump_json(refs))

    # mirrored repositories (see se_zoo.registry.mirror.adopt): commits made elsewhere, kept under their own ids
    def adopt_commit(self, namespace: str, name: str, commit: Dict[str, Any], refs: Dict[str, Dict[str, str]],
                     meta: Dict[str, Any]) -> None:
        """Store a commit of another registry under its own id and point ``refs`` at it.

        The commit file is written once and never changed; the repository is created (complete or not
        at all) when missing; given refs are set, the others kept. Blobs are not checked here: the
        caller verified them, or fetches them on first read.

        Args:
            namespace: Repository namespace.
            name: Repository name.
            commit: A validated record ``{"id", "parents", "title", "message", "date", "files"}``.
            refs: ``{"branches": {name: commit}, "tags": {name: commit}}`` to set.
            meta: ``repo.json`` of the repository, with a ``"mirror"`` key naming its origin.

        Raises:
            Conflict: if the repository exists and is not a mirror, or the commit id is stored with
                other content.
        """
        final = self._repo_dir(namespace, name)
        refs = {"branches": dict(refs.get("branches", {})), "tags": dict(refs.get("tags", {}))}
        with repo_lock(self.root, namespace, name):
            if not (final / "repo.json").exists():  # assembled aside: complete, with its refs, or absent
                final.parent.mkdir(parents=True, exist_ok=True)
                staging = final.parent / f".adopt-{uuid.uuid4().hex}"
                try:
                    (staging / "commits").mkdir(parents=True)
                    atomic_write(staging / "commits" / f"{commit['id']}.json", dump_json(commit))
                    atomic_write(staging / "refs.json", dump_json(refs))
                    atomic_write(staging / "repo.json", dump_json(meta))
                    os.rename(staging, final)
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
                fsync_dir(final.parent)
                return
            current = json.loads((final / "repo.json").read_bytes())
            if not current.get("mirror"):
                raise Conflict(f"Repository {namespace}/{name} exists here and is not a mirror; it is kept as is.")
            path = final / "commits" / f"{commit['id']}.json"
            if not path.exists():
                atomic_write(path, dump_json(commit))
            elif _read_commit(path)["files"] != commit["files"]:
                raise Conflict(f"Commit {commit['id']} of {namespace}/{name} is stored with other files.")
            merged = {**current, **meta, "createdAt": current["createdAt"]}
            if merged != current:
                atomic_write(final / "repo.json", dump_json(merged))
            stored = json.loads((final / "refs.json").read_bytes())
            updated = {kind: {**stored[kind], **refs[kind]} for kind in ("branches", "tags")}
            if updated != stored:
                atomic_write(final / "refs.json", dump_json(updated))


def _apply(files: Dict[str, Any], operations: List[Dict[str, Any]], add_entry: Any) -> Dict[str, Any]:
    """``files`` with ``operations`` applied in order; ``add_entry(op)`` builds an added file's entry."""
    for op in operations:
        path = op["path"]
        if op["op"] == "add":
            files[path] = add_entry(op)
        elif op["op"] == "delete":
            if files.pop(path, None) is None:
                raise EntryNotFound(f"Cannot delete {path!r}: a file with this name doesn't exist.")
        else:
            prefix = path.rstrip("/") + "/"
            doomed = [p for p in files if p.startswith(prefix)]
            if not doomed:
                raise EntryNotFound(f"Cannot delete folder {path!r}: it doesn't exist.")
            for p in doomed:
                del files[p]
    return files


def _append_byte(path: Path) -> None:
    """Append one byte to ``path`` (created if missing); nothing when its directory is gone."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except FileNotFoundError:
        return  # the repository was deleted meanwhile
    try:
        os.write(fd, b".")
    finally:
        os.close(fd)


def _find_dir(parent: Path, name: str) -> Optional[Path]:
    """``parent / name`` if it is a directory, else the one directory whose name matches ignoring case."""
    exact = parent / name
    if exact.is_dir():
        return exact
    lower = name.lower()
    try:
        with os.scandir(parent) as entries:
            for entry in entries:
                if entry.name.lower() == lower and not entry.name.startswith(".") and entry.is_dir():
                    return Path(entry.path)
    except FileNotFoundError:
        pass
    return None


def _commit_files(repo_dir: Path) -> Iterator[Path]:
    return (repo_dir / "commits").glob("*.json")


def blobs_referenced_by(commit_files: Iterable[Path]) -> Set[str]:
    """The sha256 of every blob the given commit files reference (unreadable ones are skipped)."""
    found: Set[str] = set()
    for path in commit_files:
        try:
            found.update(entry["sha256"] for entry in _read_commit(path)["files"].values())
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            continue
    return found


@lru_cache(maxsize=256)
def _read_commit(path: Path) -> Dict[str, Any]:
    # commits never change once written, so caching their parsed form is safe
    return json.loads(path.read_bytes())


def decode_base64(content: Any, path: str) -> bytes:
    """Decode the base64 ``content`` of a regular file in a commit; ``BadRequest`` if invalid."""
    if not isinstance(content, str):
        raise BadRequest(f"File {path!r}: 'content' must be a base64 string.")
    try:
        return base64.b64decode(content, validate=True)
    except ValueError:
        raise BadRequest(f"File {path!r}: 'content' is not valid base64.") from None
