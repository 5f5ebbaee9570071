"""``push_to_hub``: one commit with the weights, their config and the model card."""
import json
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, Optional, Tuple, Union

from torch import nn

from ..errors import InputNotFound
from ..pretrained.integrity import SAFE_WEIGHTS_NAME
from .run_record import read_run_record
from .card import card_fields_from_readme, model_card
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


def _stage_directory(source: Path, staging: Path, repo_id: str, card: dict) -> Tuple[str, str]:
    """Card for a saved directory, written to ``staging``; returns the weights' sha256 and the architecture."""
    import timm

    missing = [name for name in (SAFE_WEIGHTS_NAME, CONFIG_NAME) if not (source / name).is_file()]
    if missing:
        raise InputNotFound(f"{source} must hold {SAFE_WEIGHTS_NAME} and {CONFIG_NAME} (as written by "
                                f"save_pretrained), missing {', '.join(missing)}")
    weights_sha256 = sha256_file(source / SAFE_WEIGHTS_NAME)
    if (source / README_NAME).is_file():
        recorded = card_fields_from_readme(source / README_NAME)
        if recorded.get("model_name") == json.loads((source / CONFIG_NAME).read_text()).get("architecture"):
            recorded.pop("model_name")  # the default title of a local folder; the repo's name titles the push
        card = {**recorded, **card}
    card.setdefault("training", read_run_record(source))
    if (source / METRICS_NAME).is_file():
        card.setdefault("metrics_file", METRICS_NAME)
    model = timm.create_model(f"local-dir:{source}", pretrained=True)  # proves the directory loads
    model_card(model, weights_sha256=weights_sha256, repo_id=repo_id, **card).save(staging / README_NAME)
    return weights_sha256, model.pretrained_cfg["architecture"]


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
        **card: Any,
) -> PushResult:
    """Push a model (or a directory written by :func:`save_pretrained`) to a Hub repo.

    Creates the repo if needed (and the branch ``revision`` if it is missing),
    then commits ``model.safetensors``, ``config.json`` and ``README.md`` (and a
    directory's ``metrics.jsonl``, the training log of ``se-zoo train``) in one
    commit. The endpoint and token are huggingface_hub's: ``HF_ENDPOINT``,
    ``HF_TOKEN`` or the saved login, unless ``token`` is given. A directory's
    weights and config are pushed byte for byte; its card is re-rendered for
    ``repo_id``, keeping the license, datasets and metrics its README records.

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
        **card: Arguments of :func:`save_pretrained` (``metrics``, ``license``,
            ``datasets``, ``eval_dataset``, ``model_name``; ``model_args`` and
            ``untrained`` for models).

    Returns:
        A :class:`PushResult`.

    Raises:
        TypeError: if ``model_or_dir`` is neither a timm model nor a path.
        ValueError: if ``tag`` already exists in the repo (checked before committing),
            or is given with ``create_pr``.
        FileNotFoundError: if the directory lacks the weights or the config.
        huggingface_hub.errors.HfHubHTTPError: if the Hub refuses a request
            (401/403 without a token allowed to write).
    """
    from huggingface_hub import CommitOperationAdd, HfApi, constants

    from .. import __version__

    if not isinstance(model_or_dir, (nn.Module, str, Path)):
        raise TypeError(f"model_or_dir must be a timm model or a directory, got {type(model_or_dir).__name__}")
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
            weights_sha256 = save_pretrained(model_or_dir, staging, repo_id=repo_id, **card)
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
        commit = api.create_commit(
            repo_id, operations, commit_message=commit_message or f"Upload {arch}",
            revision=revision, create_pr=create_pr)
    if tag is not None:
        api.create_tag(repo_id, tag=tag, revision=commit.oid, tag_message=f"{tag}: {commit.oid}")
    return PushResult(
        repo_id=repo_id, revision=revision or constants.DEFAULT_REVISION, commit_sha=commit.oid,
        commit_url=commit.commit_url, weights_sha256=weights_sha256, pr_url=commit.pr_url, tag=tag)
