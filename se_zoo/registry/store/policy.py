"""What a commit must satisfy besides being well formed: signatures and pickle scans.

``se-zoo hub serve --require-signed PATTERN --trusted-keys PATH`` refuses a commit to a matching repo
unless its ``model.sig`` verifies against a key trusted for the repo and covers exactly the files the
repo will hold after the commit. The check runs under the repository's lock, on the stored sha256 of
every file (model-signing signs per-file sha256, which the store keeps for regular and LFS files
alike), so nothing is hashed again and a refused commit writes nothing. ``--refuse-unsafe-pickles``
refuses commits that add a pickle-based file whose scan finds dangerous imports.
"""
import fnmatch
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

from ..errors import Forbidden
from ..signing import SIGNATURE_NAME, SignatureError, SignedManifest, TrustPolicy, check_files, verify_signature
from .scans import unsafe_files
from .storage import Store

__all__ = ["CommitPolicy", "added_files", "signature_status"]


@dataclass(frozen=True)
class CommitPolicy:
    """The registry's commit rules.

    Attributes:
        require_signed: ``fnmatch`` patterns of ``namespace/name`` (a bare namespace means all of
            its repos) whose commits must be signed.
        trusted: The trust policy signatures are checked against (``--trusted-keys``).
        refuse_unsafe_pickles: Refuse commits adding a pickle whose scan finds dangerous imports.
    """

    require_signed: Tuple[str, ...] = ()
    trusted: Optional[TrustPolicy] = None
    refuse_unsafe_pickles: bool = False
    _patterns: Tuple[str, ...] = field(init=False, repr=False, default=())

    def __post_init__(self):
        if self.require_signed and self.trusted is None:
            raise ValueError(f"require_signed {list(self.require_signed)} needs trusted keys (--trusted-keys), "
                             "got none")
        object.__setattr__(self, "_patterns", tuple(p if "/" in p else f"{p}/*" for p in self.require_signed))

    def requires_signature(self, repo_id: str) -> bool:
        """Whether commits to ``repo_id`` must be signed."""
        return any(fnmatch.fnmatchcase(repo_id, p) for p in self._patterns)

    def check_added(self, store: Store, repo_id: str, added: Mapping[str, str]) -> None:
        """Scan the pickle files a commit adds (``{path: sha256}``); with ``refuse_unsafe_pickles``, refuse unsafe ones.

        Raises:
            Forbidden: naming each unsafe file and its dangerous imports.
        """
        found = unsafe_files(store, added)  # scanned (and cached) either way: model_info reports it
        if found and self.refuse_unsafe_pickles:
            listed = "; ".join(f"{p} imports {', '.join(i)}" for p, i in found.items())
            raise Forbidden(f"Commit to {repo_id} refused: unsafe pickle ({listed}); this registry runs with "
                            "--refuse-unsafe-pickles. Upload safetensors instead.")

    def check_files(self, store: Store, repo_id: str, files: Mapping[str, Mapping[str, Any]]) -> None:
        """Refuse a commit to a repo that requires signatures unless ``files`` (after it) verify.

        Args:
            store: The store (the signature is read from its blob).
            repo_id: ``namespace/name``.
            files: The files the repo will hold: path -> ``{"sha256", ...}``.

        Raises:
            Forbidden: naming the reason (no signature, untrusted key, and each file that differs,
                is unsigned or is missing).
        """
        if not self.requires_signature(repo_id):
            return
        try:
            signature_status(store, repo_id, files, self.trusted, required=True)
        except SignatureError as exc:
            raise Forbidden(f"Commit refused: {exc} (this registry requires signed commits for {repo_id})") from None


def signature_status(store: Store, repo_id: str, files: Mapping[str, Mapping[str, Any]],
                     trusted: Optional[TrustPolicy], required: bool = False) -> Optional[SignedManifest]:
    """Verify the signature of a set of stored files.

    Args:
        store: The store.
        repo_id: ``namespace/name``.
        files: path -> ``{"sha256", ...}``.
        trusted: The trust policy, or None (then only an unsigned or signed-but-unchecked status).
        required: Raise when there is no signature.

    Returns:
        The verified manifest, or None when the files hold no ``model.sig`` (and it is not required).

    Raises:
        SignatureError: if the signature is missing (``required``), no key is trusted for the repo,
            no trusted key verifies it, or the files differ from what it signs.
    """
    if SIGNATURE_NAME not in files:
        if required:
            raise SignatureError(f"{repo_id}: no {SIGNATURE_NAME}; the commit is unsigned")
        return None
    rule = trusted.keys_for(repo_id) if trusted is not None else None
    if rule is None:
        raise SignatureError(f"{repo_id}: no key is trusted for this repo in the trust policy")
    sig_sha = files[SIGNATURE_NAME]["sha256"]
    signature = store.blob_path(sig_sha).read_bytes()
    signed = verify_signature(signature, repo_id, rule[1])
    check_files(repo_id, signed, {p: e["sha256"] for p, e in files.items()})
    return signed


def added_files(operations: Any) -> Dict[str, str]:
    """``{path: sha256}`` of the files a list of commit operations adds."""
    return {op["path"]: op["sha256"] for op in operations if op["op"] == "add"}
