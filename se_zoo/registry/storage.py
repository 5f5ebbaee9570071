"""On-disk store of the local Hub registry: content-addressed blobs, immutable commits, atomic refs.

Layout under the root directory::

    blobs/<aa>/<sha256>        file contents named by their sha256 (``aa`` = first two hex digits)
    tmp/                       uploads in progress; same filesystem as blobs/, emptied at start-up
    repos/<namespace>/<name>/
        repo.json              {"private": bool, "createdAt": str}
        refs.json              {"branches": {name: commit}, "tags": {name: commit}}
        commits/<id>.json      one immutable commit: parents, message, date and its whole file tree

Every file is written to a temporary name in its final directory, fsynced and moved into place with
``os.replace``, so a reader sees the old version or the new one, never a torn one. A blob is moved
into ``blobs/`` only after its sha256 and size were checked; a commit is written before the ref that
points at it, and the ref update is the single step that publishes it. A process killed at any point
therefore leaves no partial commit and no blob a later read could return, only stray files in
``tmp/`` (removed at the next start) or an unreferenced commit file (never served: commits are
reached through refs, or by an id a client only learns once a ref published it).
"""
import base64
import hashlib
import json
import os
import re
import shutil
import threading
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Tuple

LFS_THRESHOLD = 10 * 1024 * 1024  # larger files are stored as LFS, like the Hub does
DEFAULT_BRANCH = "main"
CHUNK_SIZE = 1024 * 1024

_REPO_PART = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?")
_REF_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_COMMIT_ID = re.compile(r"[0-9a-f]{40}")


class HubError(Exception):
    """A request the registry refuses; ``status`` and ``code`` are what the HTTP layer sends."""

    status = 400
    code: Optional[str] = None


class BadRequest(HubError):
    """Malformed or invalid input."""


class RepoNotFound(HubError):
    """The repository does not exist (or the caller may not see it)."""

    status, code = 404, "RepoNotFound"


class RevisionNotFound(HubError):
    """The branch, tag or commit does not exist in the repository."""

    status, code = 404, "RevisionNotFound"


class EntryNotFound(HubError):
    """The file does not exist at the resolved commit (``commit`` tells which)."""

    status, code = 404, "EntryNotFound"

    def __init__(self, message: str, commit: Optional[str] = None):
        super().__init__(message)
        self.commit = commit


class Conflict(HubError):
    """The repository, branch or tag already exists."""

    status = 409


class Forbidden(HubError):
    """The operation is not allowed on this object (e.g. deleting the default branch)."""

    status = 403


class PreconditionFailed(HubError):
    """The branch moved since the commit the client based its change on."""

    status = 412


def now_iso() -> str:
    """The current UTC time in the Hub's format, e.g. ``2024-01-31T12:00:00.000000Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def validate_repo_part(value: str, what: str) -> str:
    """Check one half of a repo id (``namespace`` or ``name``).

    Args:
        value: The namespace or the repository name.
        what: ``"namespace"`` or ``"name"``, for the error message.

    Returns:
        ``value`` unchanged.

    Raises:
        BadRequest: if ``value`` has characters outside ``[A-Za-z0-9._-]``, ``--`` or ``..``,
            starts or ends with ``.`` or ``-``, ends with ``.git``, or is over 96 characters.
    """
    if (
        not isinstance(value, str)
        or not _REPO_PART.fullmatch(value)
        or "--" in value
        or ".." in value
        or value.endswith(".git")
    ):
        raise BadRequest(
            f"Invalid repo {what} {value!r}: expected 1-96 characters among [A-Za-z0-9._-], "
            "not starting or ending with '.' or '-', without '--', '..' or a '.git' suffix."
        )
    return value


def validate_path(path: str) -> str:
    """Check a file path inside a repository.

    Args:
        path: A relative POSIX path such as ``"weights/model.safetensors"``.

    Returns:
        ``path`` unchanged.

    Raises:
        BadRequest: if the path is empty, absolute, has a backslash, a control character, an empty,
            ``.``, ``..`` or ``.git`` segment, or is over 1000 characters.
    """
    if not isinstance(path, str) or not path or len(path) > 1000:
        raise BadRequest(f"Invalid file path {path!r}: expected a non-empty relative path of at most 1000 characters.")
    if "\\" in path or any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        raise BadRequest(f"Invalid file path {path!r}: backslashes and control characters are not allowed.")
    if any(part in ("", ".", "..", ".git") for part in path.split("/")):
        raise BadRequest(f"Invalid file path {path!r}: absolute paths and empty, '.', '..' or '.git' segments "
                         "are not allowed.")
    return path


def validate_ref_name(name: str, what: str = "branch") -> str:
    """Check a branch or tag name.

    Args:
        name: The name, e.g. ``"main"``, ``"v1.0"`` or ``"feature/x"``.
        what: ``"branch"`` or ``"tag"``, for the error message.

    Returns:
        ``name`` unchanged.

    Raises:
        BadRequest: if a ``/``-separated segment is empty, starts with something other than a letter,
            digit or ``_``, has characters outside ``[A-Za-z0-9._-]``, if the name contains ``..``,
            ends with ``.lock``, starts with ``refs/``, looks like a commit id or is over 200 characters.
    """
    if (
        not isinstance(name, str)
        or not 0 < len(name) <= 200
        or not all(_REF_PART.fullmatch(part) for part in name.split("/"))
        or ".." in name
        or name.endswith(".lock")
        or name.startswith("refs/")
        or _COMMIT_ID.fullmatch(name)
    ):
        raise BadRequest(
            f"Invalid {what} name {name!r}: expected '/'-separated segments of [A-Za-z0-9._-], each starting "
            "with a letter, digit or '_', without '..', a '.lock' suffix or a 'refs/' prefix, and not a commit id."
        )
    return name


def validate_sha256(oid: Any) -> str:
    """Check a lowercase hex sha256 and return it; raise ``BadRequest`` otherwise."""
    if not isinstance(oid, str) or not _SHA256.fullmatch(oid):
        raise BadRequest(f"Invalid sha256 {oid!r}: expected 64 lowercase hex digits.")
    return oid


def git_blob_oid(data: bytes) -> str:
    """The git object id (sha1 of ``blob <size>\\0<data>``) of ``data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file that stands for an LFS object in git."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def upload_mode(size: int, sample: bytes) -> str:
    """``"lfs"`` for large or binary files (a NUL byte in the first 512 bytes), else ``"regular"``."""
    return "lfs" if size > LFS_THRESHOLD or b"\0" in sample else "regular"


def _fsync_dir(path: Path) -> None:
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
    _fsync_dir(path.parent)


def _dump(obj: Any) -> bytes:
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
        self._path = store.root / "tmp" / f"{uuid.uuid4().hex}.part"
        self._file: BinaryIO = open(self._path, "wb")

    def write(self, chunk: bytes) -> None:
        """Append ``chunk``; raises ``BadRequest`` once more than ``max_size`` bytes arrived."""
        self.size += len(chunk)
        if self._max_size is not None and self.size > self._max_size:
            raise BadRequest(f"Upload is larger than the announced size of {self._max_size} bytes.")
        self._hash.update(chunk)
        self._file.write(chunk)

    def commit(self, expected_sha256: Optional[str] = None, expected_size: Optional[int] = None) -> str:
        """Verify what was written and move it into ``blobs/``.

        Args:
            expected_sha256: The sha256 the content must have (checked when given).
            expected_size: The size the content must have (checked when given).

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
        if not final.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._path, final)
            _fsync_dir(final.parent)
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

    Methods that change a repository take that repository's lock; they block (disk I/O and fsync),
    so an async caller runs them in a worker thread.

    Args:
        root: The directory to keep everything in; created if missing.
    """

    def __init__(self, root: os.PathLike):
        self.root = Path(root).resolve()
        for sub in ("blobs", "tmp", "repos"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for stale in (self.root / "tmp").iterdir():  # uploads cut short by a previous process
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
        self._locks: Dict[Tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()

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
        return self.root / "repos" / validate_repo_part(namespace, "namespace") / validate_repo_part(name, "name")

    @contextmanager
    def _locked(self, namespace: str, name: str) -> Iterator[None]:
        with self._locks_guard:
            lock = self._locks.setdefault((namespace, name), threading.Lock())
        with lock:
            yield

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
            if _REPO_PART.fullmatch(namespace) and _REPO_PART.fullmatch(name):
                found.append((namespace, name, json.loads(repo_json.read_bytes())))
        return found

    def create_repo(self, namespace: str, name: str, private: bool) -> None:
        """Create a repository whose ``main`` branch holds an empty initial commit.

        The repository directory is assembled under a temporary name and renamed into place, so it
        appears complete or not at all.

        Raises:
            BadRequest: if the id is invalid.
            Conflict: if the repository exists.
        """
        final = self._repo_dir(namespace, name)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.parent / f".create-{uuid.uuid4().hex}"
        try:
            (staging / "commits").mkdir(parents=True)
            created = now_iso()
            commit = self._new_commit(staging, [], {}, "initial commit", "", created)
            atomic_write(staging / "repo.json", _dump({"private": bool(private), "createdAt": created}))
            atomic_write(staging / "refs.json", _dump({"branches": {DEFAULT_BRANCH: commit}, "tags": {}}))
            with self._locked(namespace, name):
                try:
                    os.rename(staging, final)
                except OSError:
                    if final.exists():
                        raise Conflict(f"Repository {namespace}/{name} already exists.") from None
                    raise
            _fsync_dir(final.parent)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def delete_repo(self, namespace: str, name: str) -> None:
        """Delete a repository (its blobs stay in the store); raises ``RepoNotFound``."""
        self.repo_meta(namespace, name)
        trash = self.root / "tmp" / f"deleted-{uuid.uuid4().hex}"
        with self._locked(namespace, name):
            try:
                os.rename(self._repo_dir(namespace, name), trash)
            except FileNotFoundError:
                raise RepoNotFound(f"Repository {namespace}/{name} not found.") from None
        shutil.rmtree(trash, ignore_errors=True)

    def set_private(self, namespace: str, name: str, private: bool) -> None:
        """Change the visibility of a repository; raises ``RepoNotFound``."""
        with self._locked(namespace, name):
            meta = self.repo_meta(namespace, name)
            meta["private"] = bool(private)
            atomic_write(self._repo_dir(namespace, name) / "repo.json", _dump(meta))

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
        if _COMMIT_ID.fullmatch(revision) and (commits / f"{revision}.json").exists():
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
        commit = hashlib.sha1(_dump(body)).hexdigest()
        atomic_write(repo_dir / "commits" / f"{commit}.json", _dump({"id": commit, **body}))
        return commit

    def commit(self, namespace: str, name: str, branch: str, operations: List[Dict[str, Any]],
               title: str, message: str = "", parent: Optional[str] = None) -> str:
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

        Returns:
            The new commit id.

        Raises:
            RepoNotFound, RevisionNotFound: if the repository or the branch do not exist.
            BadRequest: if an added blob is missing.
            EntryNotFound: if a deleted file or folder does not exist.
            PreconditionFailed: if ``branch`` moved away from ``parent``.
        """
        repo_dir = self._repo_dir(namespace, name)
        with self._locked(namespace, name):
            refs = self.refs(namespace, name)
            if branch not in refs["branches"]:
                raise RevisionNotFound(f"Branch {branch!r} not found in {namespace}/{name}; create it first.")
            head = refs["branches"][branch]
            if parent is not None and parent != head:
                raise PreconditionFailed(f"Branch {branch!r} is at {head}, not at the parent commit {parent}.")
            files = dict(self.commit_info(namespace, name, head)["files"])
            for op in operations:
                path = op["path"]
                if op["op"] == "add":
                    if not self.has_blob(op["sha256"], op["size"]):
                        raise BadRequest(f"Content of {path!r} (sha256 {op['sha256']}) was not uploaded.")
                    oid = (git_blob_oid(lfs_pointer(op["sha256"], op["size"])) if op["lfs"]
                           else self._git_oid_of_blob(op["sha256"], op["size"]))
                    files[path] = {"sha256": op["sha256"], "size": op["size"], "oid": oid, "lfs": op["lfs"]}
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
            commit = self._new_commit(repo_dir, [head], files, title, message, now_iso())
            refs["branches"][branch] = commit
            atomic_write(repo_dir / "refs.json", _dump(refs))
            return commit

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
        with self._locked(namespace, name):
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
            atomic_write(self._repo_dir(namespace, name) / "refs.json", _dump(refs))

    # mirrored repositories (see se_zoo.registry.adopt): commits made elsewhere, kept under their own ids
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
        with self._locked(namespace, name):
            if not (final / "repo.json").exists():  # assembled aside: complete, with its refs, or absent
                final.parent.mkdir(parents=True, exist_ok=True)
                staging = final.parent / f".adopt-{uuid.uuid4().hex}"
                try:
                    (staging / "commits").mkdir(parents=True)
                    atomic_write(staging / "commits" / f"{commit['id']}.json", _dump(commit))
                    atomic_write(staging / "refs.json", _dump(refs))
                    atomic_write(staging / "repo.json", _dump(meta))
                    os.rename(staging, final)
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
                _fsync_dir(final.parent)
                return
            current = json.loads((final / "repo.json").read_bytes())
            if not current.get("mirror"):
                raise Conflict(f"Repository {namespace}/{name} exists here and is not a mirror; it is kept as is.")
            path = final / "commits" / f"{commit['id']}.json"
            if not path.exists():
                atomic_write(path, _dump(commit))
            elif _read_commit(path)["files"] != commit["files"]:
                raise Conflict(f"Commit {commit['id']} of {namespace}/{name} is stored with other files.")
            merged = {**current, **meta, "createdAt": current["createdAt"]}
            if merged != current:
                atomic_write(final / "repo.json", _dump(merged))
            stored = json.loads((final / "refs.json").read_bytes())
            updated = {kind: {**stored[kind], **refs[kind]} for kind in ("branches", "tags")}
            if updated != stored:
                atomic_write(final / "refs.json", _dump(updated))

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
