"""Validation of the names a request carries: repo ids, branch/tag names, file paths, digests.

Every path on disk is built from names that passed these checks (or from hex digests), so nothing
is written outside the store's root. File paths must also be one unambiguous spelling: Unicode
NFC (the form macOS, git and the Hub's web pages agree on), with no control or bidirectional
formatting characters, which would make a name display as another one.
"""
import re
from typing import Any, Dict, Iterable, Optional, Tuple

from ..errors import BadRequest, Conflict
from ..limits import is_nfc, unsafe_character

REPO_PART = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?")
_REF_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
SHA256 = re.compile(r"[0-9a-f]{64}")
COMMIT_ID = re.compile(r"[0-9a-f]{40}")


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
        or not REPO_PART.fullmatch(value)
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
        BadRequest: if the path is empty, absolute, has a backslash, a control or bidirectional
            formatting character, an empty, ``.``, ``..`` or ``.git`` segment, is not in NFC, or is
            over 1000 characters.
    """
    if not isinstance(path, str) or not path or len(path) > 1000:
        raise BadRequest(f"Invalid file path {path!r}: expected a non-empty relative path of at most 1000 characters.")
    if "\\" in path:
        raise BadRequest(f"Invalid file path {path!r}: backslashes are not allowed.")
    bad = unsafe_character(path)
    if bad is not None:
        raise BadRequest(f"Invalid file path {path!r}: it contains {bad}; control and bidirectional "
                         "formatting characters are not allowed.")
    if not is_nfc(path):
        raise BadRequest(f"Invalid file path {path!r}: it is not in Unicode normalization form NFC; "
                         "send the NFC spelling of the name.")
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
        or COMMIT_ID.fullmatch(name)
    ):
        raise BadRequest(
            f"Invalid {what} name {name!r}: expected '/'-separated segments of [A-Za-z0-9._-], each starting "
            "with a letter, digit or '_', without '..', a '.lock' suffix or a 'refs/' prefix, and not a commit id."
        )
    return name


def validate_sha256(oid: Any) -> str:
    """Check a lowercase hex sha256 and return it; raise ``BadRequest`` otherwise."""
    if not isinstance(oid, str) or not SHA256.fullmatch(oid):
        raise BadRequest(f"Invalid sha256 {oid!r}: expected 64 lowercase hex digits.")
    return oid


def find_path_conflict(files: Iterable[str], added: Iterable[str]) -> Optional[Tuple[str, str]]:
    """A file of ``added`` that is also a folder (or lies under a file) in the tree ``files``.

    A tree cannot hold both ``a`` and ``a/b``: a checkout would have to drop one of them.

    Args:
        files: Every path of the tree after the change (``added`` included).
        added: The paths the change adds.

    Returns:
        ``(file, path_under_it)`` for the first conflict found, or ``None``.
    """
    files = set(files)
    folders: Dict[str, str] = {}  # folder -> one file under it
    for path in files:
        for i in range(len(path)):
            if path[i] == "/":
                folders.setdefault(path[:i], path)
    for path in sorted(added):
        if path in folders:
            return path, folders[path]
        for i in range(len(path)):
            if path[i] == "/" and path[:i] in files:
                return path[:i], path
    return None


def refuse_path_conflict(files: Iterable[str], added: Iterable[str]) -> None:
    """Raise ``Conflict`` (409) naming both paths if ``find_path_conflict`` finds one."""
    conflict = find_path_conflict(files, added)
    if conflict is not None:
        raise Conflict(f"Path {conflict[0]!r} would be both a file and a folder (it holds {conflict[1]!r}); "
                       "a repository cannot hold both.")
