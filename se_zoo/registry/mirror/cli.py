"""``se-zoo hub mirror`` and ``se-zoo hub import``, and the ``--upstream`` options of ``serve``.

Usage::

    se-zoo hub serve --root DIR --upstream https://huggingface.co [--upstream-token-file F]
    se-zoo hub mirror [REPO[@REV] ...] [--tags PATTERN ...] [--from URL]
                      (--to URL | --to-root DIR | --bundle FILE)
    se-zoo hub import BUNDLE (--to URL | --to-root DIR)

Tokens never go on the command line: the source's comes from ``--from-token-file`` (or
``--upstream-token-file`` for ``serve``) or ``$SE_ZOO_UPSTREAM_TOKEN``; the target registry's write
token from ``--to-token-file`` or ``$SE_ZOO_TARGET_TOKEN``. ``--to-root`` writes a registry
directory no server is running on; ``--to`` a running registry.
"""
import argparse
import os
from pathlib import Path
from typing import Any, List, Optional, Tuple

from ..errors import CommandError, HubError

__all__ = ["add_serve_upstream_arguments", "add_mirror_arguments", "upstream_from_args", "run_mirror_command"]

TARGET_TOKEN_ENV = "SE_ZOO_TARGET_TOKEN"
PUBLIC_HUB = "https://huggingface.co"


def add_serve_upstream_arguments(serve: argparse.ArgumentParser) -> None:
    """Add ``--upstream``, ``--upstream-token-file`` and ``--upstream-ttl`` to ``serve``."""
    serve.add_argument("--upstream", metavar="URL",
                       help="pull repos this registry lacks through from URL (the public Hub or a registry)")
    serve.add_argument("--upstream-token-file", type=Path, metavar="FILE",
                       help="file holding the upstream's token (default: $SE_ZOO_UPSTREAM_TOKEN)")
    serve.add_argument("--upstream-ttl", type=float, default=60.0, metavar="SECONDS",
                       help="how long a branch or tag name resolved upstream is trusted (default: 60)")


def add_mirror_arguments(sub: Any) -> None:
    """Add the ``mirror`` and ``import`` sub-subcommands to the ``hub`` subparsers ``sub``."""
    mirror = sub.add_parser("mirror", help="copy repos to another registry or into a bundle file",
                            description="Copy Hub repositories, keeping their commit ids, to a registry or a bundle.")
    mirror.add_argument("repos", nargs="*", metavar="REPO[@REV]", help="repository ids, optionally @branch/tag/commit")
    mirror.add_argument("--tags", nargs="+", default=[], metavar="PATTERN",
                        help='se-zoo catalogue tags to mirror, e.g. "se_zoo_resnet50.*"')
    mirror.add_argument("--from", dest="source", default=None, metavar="URL",
                        help=f"endpoint to copy from (default: $HF_ENDPOINT or {PUBLIC_HUB})")
    mirror.add_argument("--from-token-file", type=Path, metavar="FILE",
                        help="file holding the source's token (default: $SE_ZOO_UPSTREAM_TOKEN)")
    _add_target(mirror, bundle=True)
    load = sub.add_parser("import", help="load a bundle into a registry",
                          description="Load a bundle written by `se-zoo hub mirror --bundle` into a registry.")
    load.add_argument("bundle", type=Path, help="the bundle file")
    load.add_argument("--trusted-keys", type=Path, metavar="PATH",
                      help="trust policy (file or folder): the repos it covers must be signed by its keys, "
                           "checked before anything is written (docs/security.md)")
    _add_target(load, bundle=False)


def _add_target(parser: argparse.ArgumentParser, bundle: bool) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", metavar="URL", help="a running registry (needs its write token)")
    target.add_argument("--to-root", type=Path, metavar="DIR", help="a registry directory no server runs on")
    if bundle:
        target.add_argument("--bundle", type=Path, metavar="FILE", help="a bundle file (created, extended or resumed)")
    parser.add_argument("--to-token-file", type=Path, metavar="FILE",
                        help=f"file holding the target registry's write token (default: ${TARGET_TOKEN_ENV})")


def upstream_from_args(args: argparse.Namespace) -> Optional[Any]:
    """The ``Upstream`` of ``serve --upstream``, or None without one.

    Raises:
        ValueError: for a bad URL, TTL or token file.
    """
    if not args.upstream:
        if args.upstream_token_file is not None:
            raise CommandError("--upstream-token-file needs --upstream URL.")
        return None
    from .upstream import Upstream, read_token

    return Upstream(args.upstream, read_token(args.upstream_token_file), ttl=args.upstream_ttl)


def _wanted(args: argparse.Namespace) -> List[Tuple[str, str]]:
    from .catalog import repos_for_tags

    wanted = []
    for item in args.repos:
        repo_id, _, revision = item.partition("@")
        wanted.append((repo_id, revision or "main"))
    wanted += [(repo_id, revision) for repo_id, revision, _ in repos_for_tags(args.tags)]
    if not wanted:
        raise CommandError("mirror: name repositories (REPO[@REV]) or catalogue tags (--tags PATTERN); got neither.")
    return wanted


def _sink(args: argparse.Namespace, bundle: Optional[Path]) -> Any:
    from .transfer import RegistrySink, StoreSink

    if bundle is not None:
        from .bundle import BundleWriter

        return BundleWriter(bundle)
    if args.to_root is not None:
        return StoreSink(args.to_root)
    if args.to_token_file is not None:
        token = Path(args.to_token_file).read_text().strip()
    else:
        token = os.environ.get(TARGET_TOKEN_ENV, "").strip()
    if not token:
        raise CommandError(f"--to {args.to}: a write token of that registry is needed "
                         f"(--to-token-file FILE or ${TARGET_TOKEN_ENV}).")
    return RegistrySink(args.to, token)


def run_mirror_command(args: argparse.Namespace) -> int:
    """Run ``mirror`` or ``import`` (see :func:`_run`), with upstream refusals as ``CommandError``."""
    try:
        return _run(args)
    except HubError as exc:  # an upstream or registry refusal: one line for the user, no traceback
        raise CommandError(str(exc)) from None


def _run(args: argparse.Namespace) -> int:
    """Run ``mirror`` or ``import``; prints one line per repository and a summary with the bytes moved.

    Returns:
        0 on success.

    Raises:
        CommandError: for bad arguments, an unreadable bundle or a refused copy (printed as one line).
    """
    from .transfer import Stats

    stats = Stats()
    if args.hub_command == "import":
        from .bundle import import_bundle

        from ..signing import SignatureError, TrustPolicy

        try:
            trusted = TrustPolicy.load(args.trusted_keys) if args.trusted_keys is not None else None
        except (SignatureError, ModuleNotFoundError) as exc:
            raise CommandError(str(exc)) from None
        sink = _sink(args, bundle=None)
        try:
            import_bundle(args.bundle, sink, stats, trusted=trusted)
        finally:
            sink.close()
    else:
        from .transfer import mirror_repos
        from .upstream import Upstream, read_token

        wanted = _wanted(args)
        source = Upstream(args.source or os.environ.get("HF_ENDPOINT") or PUBLIC_HUB, read_token(args.from_token_file))
        try:
            sink = _sink(args, bundle=args.bundle)
            try:
                mirror_repos(source, sink, wanted, stats)
            except BaseException:
                getattr(sink, "abort", sink.close)()  # a bundle cut short must not look complete
                raise
            sink.close()
        finally:
            source.close()
    print(stats.summary(), flush=True)
    return 0
