"""``se-zoo pull``: download a Hub repo, verify its weights and load it."""
import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``se-zoo pull`` arguments to ``parser``."""
    parser.add_argument("repo_id", help="Hub repo, namespace/name (HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE apply)")
    parser.add_argument("--revision", help="branch, tag or commit (default: the default branch)")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="load a pytorch_model.bin-only repo with torch.load(weights_only=True)")


def run(args: argparse.Namespace) -> int:
    """Pull ``args.repo_id`` and print what was loaded; returns the exit status."""
    from . import pull
    from ._cli_errors import hub_errors

    with hub_errors(args.repo_id, args.revision):
        result = pull(args.repo_id, revision=args.revision, allow_pickle=args.allow_pickle)
    print(f"        repo: {result.repo_id}")
    print(f"    revision: {result.revision}")
    print(f"architecture: {result.model.pretrained_cfg['architecture']}")
    print(f"      params: {sum(p.numel() for p in result.model.parameters()):,}")
    print(f"        file: {result.filename}")
    print(f"      sha256: {result.weights_sha256}")
    return 0
