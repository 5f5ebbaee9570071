"""Verify signed repos before loading them: ``SE_ZOO_TRUSTED_KEYS`` on the client side.

With a trust policy (:class:`se_zoo.registry.signing.TrustPolicy`, read from ``SE_ZOO_TRUSTED_KEYS``) whose
pattern matches a repo, :func:`verified_snapshot` downloads the repo's whole snapshot at one commit
and checks its ``model.sig`` and every file against it; :func:`se_zoo.hub.pull` and timm's
``hf-hub:`` loader (wrapped by ``se_zoo._timm_trust`` when se-zoo registers its models) then load
that commit only, the weights' bytes checked in memory against the signed sha256. Without a policy,
or for repos no pattern matches, nothing changes. (The timm wrappers live in ``se_zoo._timm_trust``,
outside this package, so registering the models does not import the Hub client.)
"""
import hashlib
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

from ..registry.signing import SignatureError, SignedManifest, TrustPolicy, verify_directory

__all__ = ["signed_bytes", "verified_snapshot"]

# verified in this process: (repo, commit, the trusted keys' ids) -> what was signed
_verified: Dict[Tuple[str, str, Tuple[str, ...]], SignedManifest] = {}


def verified_snapshot(repo_id: str, revision: Optional[str] = None,
                      cache_dir: Optional[Union[str, Path]] = None) -> Optional[Tuple[str, SignedManifest]]:
    """Download and verify ``repo_id`` at ``revision`` when the trust policy covers it.

    Args:
        repo_id: ``namespace/name``.
        revision: Branch, tag or commit; the default branch when None.
        cache_dir: huggingface_hub cache directory.

    Returns:
        ``(commit, signed manifest)``, or None when no policy is set or none of its patterns
        matches ``repo_id`` (nothing is downloaded then).

    Raises:
        se_zoo.registry.signing.SignatureError: if ``model.sig`` is missing, made by a key the policy does not
            trust for the repo, or any file differs from, is missing from or is added to what was
            signed; the message names the file or key.
    """
    policy = TrustPolicy.from_env()
    rule = policy.keys_for(repo_id) if policy is not None else None
    if rule is None:
        return None
    from huggingface_hub import snapshot_download

    folder = Path(snapshot_download(repo_id, revision=revision, cache_dir=cache_dir))
    commit = folder.name  # snapshots/<commit>
    memo = (repo_id, commit, tuple(k.key_id for k in rule[1]))
    if memo not in _verified:
        _verified[memo] = verify_directory(folder, repo_id, rule[1])
    return commit, _verified[memo]


def signed_bytes(path: Union[str, Path], repo_id: str, filename: str, signed: SignedManifest) -> bytes:
    """Read ``path`` and check its sha256 against the signed one of ``filename``.

    Raises:
        se_zoo.registry.signing.SignatureError: naming the file, if the bytes are not the signed ones.
    """
    data = Path(path).read_bytes()
    if hashlib.sha256(data).hexdigest() != signed.digests.get(filename):
        raise SignatureError(f"{repo_id}: {filename} differs from the file signed by key {signed.key_id}")
    return data
