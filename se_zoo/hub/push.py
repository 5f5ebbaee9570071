"""``push_to_hub``: one commit with the weights, their config and the model card."""
import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, List, Mapping, Optional, Tuple, Union

from torch import nn

from ..errors import InputNotFound, InvalidArgument
from ..pretrained.integrity import SAFE_WEIGHTS_NAME
from ..provenance import WeightsOrigin, recorded_origin
from ..registry.signing import SIGNATURE_NAME, is_covered, sign_directory
from .card import CardOptions, model_card
from .run_record import read_run_record
from .save import CONFIG_NAME, METRICS_NAME, README_NAME, save_pretrained, sha256_file

__all__ = ["PushResult", "push_to_hub"]


@dataclass(frozen=True)
class PushResult:
    """What :func:`push_to_hub` committed.

    Attributes:
        repo_id: The repo, as the Hub names it.
        revision: The branch committed to (the PR's target with ``create_pr``).
        commit_sha: The new commit's id; ``from_pretrained(repo_id, revision=commit_sha)``
            loads exactly these weights.
        commit_url: The commit's page on the Hub.
        weights_sha256: sha256 of the pushed ``model.safetensors``.
        pr_url: The pull request's page, when ``create_pr`` was set.
        tag: The tag created on the commit, when ``tag`` was given.
    """

    repo_id: str
    revision: str
    commit_sha: str
    commit_url: str
    weights_sha256: str
    pr_url: Optional[str] = None
    tag: Optional[str] = None


def _directory_origin(source: Path) -> WeightsOrigin:
    """Where a saved directory's weights came from: its config's record, or its training run's."""
    origin = recorded_origin(source / CONFIG_NAME)
    run = read_run_record(source)  # a training folder's latest record (all epochs run so far)
    if run is not None and (origin is None or origin.kind == "training"):
        return WeightsOrigin("training", run=run)
    return origin or WeightsOrigin("unknown", note=f"{source.name}/{CONFIG_NAME} records no weights origin")


def _stage_directory(source: Path, staging: Path, repo_id: str, card: Optional[CardOptions]) -> Tuple[str, str]:
    """Card for a saved directory, written to ``staging``; returns the weights' sha256 and the architecture."""
    import timm

    missing = [name for name in (SAFE_WEIGHTS_NAME, CONFIG_NAME) if not (source / name).is_file()]
    if missing:
        raise InputNotFound(f"{source} must hold {SAFE_WEIGHTS_NAME} and {CONFIG_NAME} (as written by "
                                f"save_pretrained), missing {', '.join(missing)}")
    weights_sha256 = sha256_file(source / SAFE_WEIGHTS_NAME)
    recorded = CardOptions()
    if (source / README_NAME).is_file():
        recorded = CardOptions.from_readme(source / README_NAME)
        if recorded.model_name == json.loads((source / CONFIG_NAME).read_text()).get("architecture"):
            recorded = replace(recorded, model_name=None)  # a local folder's default title; the repo's name titles it
    model = timm.create_model(f"local-dir:{source}", pretrained=True)  # proves the directory loads
    model_card(model, weights_sha256=weights_sha256, repo_id=repo_id, options=(card or CardOptions()).over(recorded),
               origin=_directory_origin(source),
               metrics_file=METRICS_NAME if (source / METRICS_NAME).is_file() else None).save(staging / README_NAME)
    return weights_sha256, model.pretrained_cfg["architecture"]


def _signature_operations(api: Any, repo_id: str, revision: Optional[str], operations: List[Any], folder: Path,
                          sign_key: Union[str, Path], sign_certificate: Optional[Union[str, Path]]) -> List[Any]:
    """``model.sig`` over the files ``operations`` add, and the deletions of the branch's other covered files."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    folder.mkdir()
    for op in operations:  # the files exactly as pushed, linked (or copied) side by side
        try:
            os.link(op.path_or_fileobj, folder / op.path_in_repo)
        except OSError:
            shutil.copyfile(op.path_or_fileobj, folder / op.path_in_repo)
    sign_directory(folder, sign_key, certificate=sign_certificate)
    pushed = {op.path_in_repo for op in operations}
    stale = [p for p in api.list_repo_files(repo_id, revision=revision) if p not in pushed and is_covered(p)]
    return [CommitOperationAdd(path_in_repo=SIGNATURE_NAME, path_or_fileobj=str(folder / SIGNATURE_NAME)),
            *(CommitOperationDelete(path_in_repo=p) for p in stale)]


def push_to_hub(
        model_or_dir: Union[nn.Module, str, Path],
        repo_id: str,
        *,
        revision: Optional[str] = None,
        private: bool = False,
        token: Optional[str] = None,
        commit_message: Optional[str] = None,
        create_pr: bool = False,
        tag: Optional[str] = None,
        model_args: Optional[Mapping[str, Any]] = None,
        card: Optional[CardOptions] = None,
        sign_key: Optional[Union[str, Path]] = None,
        sign_certificate: Optional[Union[str, Path]] = None,
) -> PushResult:
    """Push a model (or a directory written by :func:`save_pretrained`) to a Hub repo.

    Creates the repo if needed (and the branch ``revision`` if it is missing),
    then commits ``model.safetensors``, ``config.json`` and ``README.md`` (and a
    directory's ``metrics.jsonl``, the training log of ``se-zoo train``) in one
    commit. The endpoint and token are huggingface_hub's: ``HF_ENDPOINT``,
    ``HF_TOKEN`` or the saved login, unless ``token`` is given. A directory's
    weights and config are pushed byte for byte; its card is re-rendered for
    ``repo_id``, keeping the license, datasets and metrics its README records.
    The card's "Weights" line and "untrained" warning follow the model's
    :func:`se_zoo.provenance.weights_origin` (a directory's: the origin its
    ``config.json`` records, or its training run's record).

    With ``sign_key``, every pushed file is signed (OpenSSF model-signing, per-file
    sha256) and the signature is committed with them as ``model.sig``; files of the
    branch that are not part of the push are deleted in the same commit, so the
    signed set is exactly what the commit holds (see ``docs/security.md``).

    Args:
        model_or_dir: A timm model, or a directory holding ``model.safetensors``
            and ``config.json``.
        repo_id: ``namespace/name``.
        revision: Branch to commit to; defaults to the repo's default branch.
        private: Create the repo private (an existing repo keeps its visibility).
        token: Hub token; defaults to huggingface_hub's resolution.
        commit_message: Defaults to ``"Upload <architecture>"``.
        create_pr: Open a pull request instead of committing to the branch.
        tag: Tag the new commit (e.g. ``"v1.0"``), so that
            ``from_pretrained(repo_id, revision=tag)`` loads it; must not exist yet.
        model_args: For a model: constructor arguments to record (see :func:`save_pretrained`).
        card: Title, license, datasets and metrics for the card (:class:`CardOptions`);
            for a directory, they override what its README records.
        sign_key: PEM elliptic-curve private key to sign the commit with (needs the
            ``signing`` extra).
        sign_certificate: The key's signing certificate (certificate mode); key-pair
            mode without it.

    Returns:
        A :class:`PushResult`.

    Raises:
        TypeError: if ``model_or_dir`` is neither a timm model nor a path, or
            ``model_args`` is given with a directory.
        ValueError: if ``tag`` already exists in the repo (checked before committing),
            or is given with ``create_pr``, or ``sign_certificate`` without ``sign_key``.
        se_zoo.registry.signing.SignatureError: if ``sign_key`` cannot be read or is not a
            supported elliptic-curve key (nothing is pushed).
        FileNotFoundError: if the directory lacks the weights or the config.
        huggingface_hub.errors.HfHubHTTPError: if the Hub refuses a request
            (401/403 without a token allowed to write).
    """
    from huggingface_hub import CommitOperationAdd, HfApi, constants

    from .. import __version__

    if not isinstance(model_or_dir, (nn.Module, str, Path)):
        raise TypeError(f"model_or_dir must be a timm model or a directory, got {type(model_or_dir).__name__}")
    if model_args is not None and not isinstance(model_or_dir, nn.Module):
        raise TypeError(f"model_args applies to models; a directory's config.json records them, got {model_args!r} "
                        f"with {model_or_dir}")
    if sign_certificate is not None and sign_key is None:
        raise InvalidArgument(f"sign_certificate needs sign_key (its private key), got sign_key=None with "
                              f"sign_certificate={str(sign_certificate)!r}")
    api = HfApi(token=token, library_name="se-zoo", library_version=__version__)
    if tag is not None and create_pr:
        raise ValueError(f"tag must be None with create_pr (a pull request's commit is not tagged), got {tag!r}")
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    if tag is not None and tag in {t.name for t in api.list_repo_refs(repo_id).tags}:
        raise ValueError(f"tag must be new in {repo_id}, got {tag!r}, which exists; push with another tag")
    if revision is not None:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    with TemporaryDirectory() as tmp:
        staging = Path(tmp)
        if isinstance(model_or_dir, nn.Module):
            weights_sha256 = save_pretrained(model_or_dir, staging, model_args=model_args, repo_id=repo_id, card=card)
            source, arch = staging, model_or_dir.pretrained_cfg["architecture"]
        else:
            source = Path(model_or_dir)
            weights_sha256, arch = _stage_directory(source, staging, repo_id, card)
        operations = [
            CommitOperationAdd(path_in_repo=SAFE_WEIGHTS_NAME, path_or_fileobj=str(source / SAFE_WEIGHTS_NAME)),
            CommitOperationAdd(path_in_repo=CONFIG_NAME, path_or_fileobj=str(source / CONFIG_NAME)),
            CommitOperationAdd(path_in_repo=README_NAME, path_or_fileobj=str(staging / README_NAME)),
        ]
        if (source / METRICS_NAME).is_file():  # a training output: the registry's pages chart it
            operations.append(CommitOperationAdd(path_in_repo=METRICS_NAME,
                                                 path_or_fileobj=str(source / METRICS_NAME)))
        if sign_key is not None:
            operations += _signature_operations(api, repo_id, revision, operations, staging / "signed",
                                                sign_key, sign_certificate)
        commit = api.create_commit(
            repo_id, operations, commit_message=commit_message or f"Upload {arch}",
            revision=revision, create_pr=create_pr)
    if tag is not None:
        api.create_tag(repo_id, tag=tag, revision=commit.oid, tag_message=f"{tag}: {commit.oid}")
    return PushResult(
        repo_id=repo_id, revision=revision or constants.DEFAULT_REVISION, commit_sha=commit.oid,
        commit_url=commit.commit_url, weights_sha256=weights_sha256, pr_url=commit.pr_url, tag=tag)
