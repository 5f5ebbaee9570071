"""``se-zoo push``: push a model, or a directory written by ``save_pretrained``, to a Hub repo."""
import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``se-zoo push`` arguments to ``parser``."""
    parser.add_argument("model", help="registered model name (name or name.tag), or a directory written by "
                                      "save_pretrained / se-zoo train")
    parser.add_argument("repo_id", help="Hub repo, namespace/name (HF_ENDPOINT and HF_TOKEN apply)")
    parser.add_argument("--pretrained", action="store_true", help="push the model's pretrained weights")
    parser.add_argument("--revision", help="branch to commit to (created if missing)")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--message", help="commit message")
    parser.add_argument("--tag", help="tag the new commit (e.g. v1.0; must be new), to pull with --revision TAG")


def run(args: argparse.Namespace) -> int:
    """Push ``args.model`` and print the commit; returns the exit status."""
    from . import push_to_hub
    from ._cli_errors import HubCommandError, hub_errors

    source = Path(args.model)
    if source.is_dir() and args.pretrained:
        raise HubCommandError(f"--pretrained applies to model names; {args.model} is a directory")
    with hub_errors(args.repo_id, args.revision):
        if not source.is_dir():
            import timm

            from .errors import model_download_failures

            with model_download_failures(args.model, args.pretrained):
                source = timm.create_model(args.model, pretrained=args.pretrained)
        untrained = {} if isinstance(source, Path) else {"untrained": not args.pretrained}
        result = push_to_hub(source, args.repo_id, revision=args.revision, private=args.private,
                             commit_message=args.message, tag=args.tag, **untrained)
    print(f"      repo: {result.repo_id}")
    print(f"  revision: {result.revision}")
    print(f"    commit: {result.commit_sha}")
    print(f"       url: {result.commit_url}")
    print(f"    sha256: {result.weights_sha256}")
    if result.tag:
        print(f"       tag: {result.tag}")
    return 0
