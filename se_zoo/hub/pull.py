"""``from_pretrained``: timm's ``hf-hub:`` load, with the weights' sha256 checked first.

The weights are downloaded (or found in the cache) with huggingface_hub, which
also tells the commit they belong to; the config is then read at that same
commit. The weights file is read into memory, its sha256 compared with the
Hub's record of that file at that commit (its LFS sha256) and with any
``weights/`` catalogue pin of it, and only then deserialised from the same
bytes and handed to ``timm.create_model`` as an in-memory state dict, so what
was checked is what is loaded.

With ``HF_HUB_OFFLINE=1`` the Hub's record is the one huggingface_hub kept when
it downloaded the file: cached blobs are named by the etag the Hub sent, which
for LFS files is their sha256.
"""
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Tuple, Union

from torch import nn

from ..errors import InvalidArgument
from ..models._checkpoint import load_weights
from ..pretrained.download_errors import download_failures
from ..pretrained.integrity import SAFE_WEIGHTS_NAME, IntegrityError, catalog_pins, read_verified
from ..provenance import WeightsOrigin, recorded_origin, set_weights_origin
from .trust import verified_snapshot

__all__ = ["PICKLE_WEIGHTS_NAME", "PullResult", "pull", "from_pretrained"]

PICKLE_WEIGHTS_NAME = "pytorch_model.bin"  # the pickle timm's hf-hub loader falls back to
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class PullResult:
    """A model loaded by :func:`pull` and where its weights came from.

    Attributes:
        model: The model, weights loaded; its ``weights_origin`` names the repo,
            the commit and the verified sha256.
        repo_id: The repo.
        revision: The commit the config and weights were read at.
        filename: The weights file loaded.
        weights_sha256: Its sha256, equal to the Hub's record.
    """

    model: nn.Module
    repo_id: str
    revision: str
    filename: str
    weights_sha256: str


def _published_sha256(repo_id: str, filename: str, path: str) -> Tuple[str, Optional[str]]:
    """Where the expected hash comes from and the hash: the Hub's LFS record of ``filename`` at the commit
    ``path`` was downloaded from, or offline the etag the Hub sent at download (the cached blob's name)."""
    from huggingface_hub import HfApi

    from ..pretrained.hf_compat import is_offline_mode

    if is_offline_mode():
        etag = Path(os.path.realpath(path)).name
        return "the Hub's sha256 cached at download", etag if _SHA256.fullmatch(etag) else None
    commit = Path(path).parent.name  # hf_hub_download returns snapshots/<commit>/<filename>
    entries = HfApi().get_paths_info(repo_id, [filename], revision=commit)
    lfs = entries[0].lfs if entries and getattr(entries[0], "lfs", None) else None
    return "the Hub's LFS record", lfs.sha256 if lfs else None


def _refuse_flagged_pickle(repo_id: str, commit: str, filename: str) -> None:
    """Refuse a pickle the Hub's scan (``securityRepoStatus``) flags unsafe; offline, the scan is not asked."""
    from huggingface_hub import HfApi

    from ..pretrained.hf_compat import is_offline_mode

    if is_offline_mode():
        return
    status = HfApi().model_info(repo_id, revision=commit, securityStatus=True).security_repo_status or {}
    for found in status.get("filesWithIssues") or []:
        if found.get("path") == filename and found.get("level") == "unsafe":
            imports = ", ".join(f"{i.get('module')}.{i.get('name')}" for i in found.get("pickleImports") or [])
            raise IntegrityError(f"{filename}: the Hub's pickle scan of {repo_id}@{commit} flags it unsafe "
                                 f"(imports {imports or 'unsafe globals'}); refusing to unpickle it")


def pull(
        repo_id: str,
        *,
        revision: Optional[str] = None,
        allow_pickle: bool = False,
        cache_dir: Optional[Union[str, Path]] = None,
        **create_model_kwargs: Any,
) -> PullResult:
    """Download, verify and load a timm model from a Hub repo.

    Args:
        repo_id: ``namespace/name``.
        revision: Branch, tag or commit; defaults to the default branch.
        allow_pickle: Load ``pytorch_model.bin`` (with ``torch.load(weights_only=True)``)
            when the repo has no ``model.safetensors``; refused otherwise.
        cache_dir: huggingface_hub cache directory; defaults to its usual one.
        **create_model_kwargs: Passed to ``timm.create_model`` (``num_classes``,
            ``drop_rate``, ...).

    Returns:
        A :class:`PullResult`.

    Raises:
        IntegrityError: if the weights' sha256 differs from the Hub's record or a
            catalogue pin, or the Hub has no sha256 record of them, or the Hub's pickle
            scan flags ``pytorch_model.bin`` unsafe; nothing is loaded.
        se_zoo.registry.signing.SignatureError: with a trust policy (``SE_ZOO_TRUSTED_KEYS``) covering
            ``repo_id``: the signature is missing or untrusted, or a file differs from what was
            signed (the message names it); nothing is loaded.
        ValueError: if the repo has no ``model.safetensors`` and ``allow_pickle`` is False.
        huggingface_hub.errors.RemoteEntryNotFoundError: if it has neither weights file.
        se_zoo.pretrained.download_errors.HubUnreachableError: if the weights are neither downloadable (no network,
            endpoint unreachable, offline mode) nor cached; the message names the endpoint,
            the repo, the file and the ways out.
        huggingface_hub.errors.RepositoryNotFoundError: no such repo (or no access).
        huggingface_hub.errors.RevisionNotFoundError: no such revision.
        RuntimeError: if config.json names an architecture timm does not know.
    """
    import timm
    from huggingface_hub import hf_hub_download
    from huggingface_hub.constants import CONFIG_NAME

    from ..pretrained.hf_compat import RemoteEntryNotFoundError

    if "pretrained" in create_model_kwargs:
        raise TypeError("pull always loads the pretrained weights; drop the 'pretrained' argument")
    asked = revision  # what the catalogue pins are looked up by (a tag, say)
    trusted = verified_snapshot(repo_id, revision, cache_dir)  # with a trust policy: before anything is read
    if trusted is not None:
        revision = trusted[0]  # then everything is read at the verified commit
    try:
        filename = SAFE_WEIGHTS_NAME
        with download_failures(repo_id, filename, revision=revision, cache_dir=cache_dir):
            path = hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir)
    except RemoteEntryNotFoundError:
        if not allow_pickle:
            raise InvalidArgument(f"{repo_id} has no {SAFE_WEIGHTS_NAME}; pass allow_pickle=True (se-zoo pull "
                             f"--allow-pickle) to load its {PICKLE_WEIGHTS_NAME}, a pickle, with "
                             "torch.load(weights_only=True)") from None
        filename = PICKLE_WEIGHTS_NAME
        path = hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir)
    commit = Path(path).parent.name
    with download_failures(repo_id, filename, revision=commit, cache_dir=cache_dir):
        source, published = _published_sha256(repo_id, filename, path)
    if published is None:
        raise IntegrityError(f"{filename}: the Hub has no sha256 record of it in {repo_id}@{commit}; "
                             "refusing to load it")
    expected = {source: published, **catalog_pins(repo_id, filename, (asked, commit))}
    if trusted is not None:
        expected[f"the signature by key {trusted[1].key_id}"] = trusted[1].digests.get(filename, "not signed")
    if filename == PICKLE_WEIGHTS_NAME:
        with download_failures(repo_id, filename, revision=commit, cache_dir=cache_dir):
            _refuse_flagged_pickle(repo_id, commit, filename)
    state_dict = load_weights(read_verified(path, expected, filename), filename, allow_pickle=allow_pickle)

    overlay = {**(create_model_kwargs.pop("pretrained_cfg_overlay", None) or {}),
               "source": None, "state_dict": state_dict}  # no source: timm loads the state dict, not the Hub
    model = timm.create_model(f"hf-hub:{repo_id}@{commit}", pretrained=True, pretrained_cfg_overlay=overlay,
                              cache_dir=cache_dir, **create_model_kwargs)
    model.pretrained_cfg.pop("state_dict", None)  # a cfg must not keep a second copy of the weights alive
    model.pretrained_cfg["source"] = "hf-hub"
    config = hf_hub_download(repo_id, CONFIG_NAME, revision=commit, cache_dir=cache_dir)  # cached by timm's load
    set_weights_origin(model, WeightsOrigin("hub", repo_id=repo_id, commit=commit, sha256=published,
                                            previous=recorded_origin(config)))
    return PullResult(model=model, repo_id=repo_id, revision=commit, filename=filename,
                      weights_sha256=published)


def from_pretrained(
        repo_id: str,
        *,
        revision: Optional[str] = None,
        allow_pickle: bool = False,
        **create_model_kwargs: Any,
) -> nn.Module:
    """``timm.create_model("hf-hub:<repo_id>", pretrained=True)`` with the weights verified first.

    See :func:`pull`, which this wraps, for the checks and the errors.

    Args:
        repo_id: ``namespace/name``.
        revision: Branch, tag or commit; defaults to the default branch.
        allow_pickle: Load a ``pytorch_model.bin``-only repo with
            ``torch.load(weights_only=True)``.
        **create_model_kwargs: Passed to ``timm.create_model`` (and ``cache_dir``).

    Returns:
        The model.

    Raises:
        IntegrityError: if the weights' bytes are not the published ones.

    Example:
        >>> model = from_pretrained("org/se-resnet50", revision="v1.0").eval()
    """
    return pull(repo_id, revision=revision, allow_pickle=allow_pickle, **create_model_kwargs).model
