"""``se-zoo push`` and ``se-zoo pull``: move models to and from a Hub repo."""
import argparse
from pathlib import Path

from ._errors import CliError, hub_errors


def add_push(parser: argparse.ArgumentParser) -> None:
    """Add the ``se-zoo push`` arguments to ``parser``."""
    parser.add_argument("model", help="registered model name (name or name.tag), or a directory written by "
                                      "save_pretrained / se-zoo train")
    parser.add_argument("repo_id", help="Hub repo, namespace/name (HF_ENDPOINT and HF_TOKEN apply)")
    parser.add_argument("--pretrained", action="store_true", help="push the model's pretrained weights")
    parser.add_argument("--revision", help="branch to commit to (created if missing)")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--message", help="commit message")
    parser.add_argument("--tag", help="tag the new commit (e.g. v1.0; must be new), to pull with --revision TAG")
    parser.add_argument("--sign-key", metavar="PEM", help="sign every pushed file with this elliptic-curve private "
                                                         "key (model.sig, OpenSSF model-signing; docs/security.md)")
    parser.add_argument("--sign-certificate", metavar="PEM", help="the signing key's certificate (certificate mode)")
    parser.set_defaults(run=run_push)


def run_push(args: argparse.Namespace) -> int:
    """Push ``args.model`` and print the commit; returns the exit status."""
    source = Path(args.model)
    if source.is_dir() and args.pretrained:
        raise CliError(f"--pretrained applies to model names; {args.model} is a directory")
    with hub_errors(args.repo_id, args.revision):
        import timm

        from ..hub import push_to_hub

        from ..pretrained.download_errors import model_download_failures

        if not source.is_dir():
            with model_download_failures(args.model, args.pretrained):
                source = timm.create_model(args.model, pretrained=args.pretrained)
        result = push_to_hub(source, args.repo_id, revision=args.revision, private=args.private,
                             commit_message=args.message, tag=args.tag, sign_key=args.sign_key,
                             sign_certificate=args.sign_certificate)
    print(f"      repo: {result.repo_id}")
    print(f"  revision: {result.revision}")
    print(f"    commit: {result.commit_sha}")
    print(f"       url: {result.commit_url}")
    print(f"    sha256: {result.weights_sha256}")
    if result.tag:
        print(f"       tag: {result.tag}")
    return 0


def add_pull(parser: argparse.ArgumentParser) -> None:
    """Add the ``se-zoo pull`` arguments to ``parser``."""
    parser.add_argument("repo_id", help="Hub repo, namespace/name (HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE apply)")
    parser.add_argument("--revision", help="branch, tag or commit (default: the default branch)")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="load a pytorch_model.bin-only repo with torch.load(weights_only=True)")
    parser.set_defaults(run=run_pull)


def run_pull(args: argparse.Namespace) -> int:
    """Pull ``args.repo_id`` and print what was loaded; returns the exit status."""
    from ..hub import pull, weights_origin

    with hub_errors(args.repo_id, args.revision):
        result = pull(args.repo_id, revision=args.revision, allow_pickle=args.allow_pickle)
    print(f"        repo: {result.repo_id}")
    print(f"    revision: {result.revision}")
    print(f"architecture: {result.model.pretrained_cfg['architecture']}")
    print(f"      params: {sum(p.numel() for p in result.model.parameters()):,}")
    print(f"        file: {result.filename}")
    print(f"      sha256: {result.weights_sha256}")
    print(f"     weights: {weights_origin(result.model).describe()}")
    return 0
