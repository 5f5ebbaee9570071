"""``se-zoo hub serve`` and ``se-zoo hub fsck``: run and check the local Hugging Face Hub-compatible registry.

Usage::

    SE_ZOO_HUB_TOKEN=... se-zoo hub serve --root DIR [--host 127.0.0.1] [--port N] [--workers N]
        [--tokens-file F] [--max-file-size 50GB] [--quota 100GB] [--scrub-interval SECONDS [--scrub-rate 64MiB]]
        [--accel-redirect /_blobs/]
        [--require-signed PATTERN --trusted-keys PATH] [--refuse-unsafe-pickles]
    se-zoo hub fsck --root DIR [--gc] [--grace SECONDS] [--repair [--upstream URL] [--upstream-token-file F]]

``--port 0`` (the default) picks a free port; the endpoint URL is printed once the server
listens. Tokens never need to be on the command line (where every user of the machine can read
them in the process list):

- ``SE_ZOO_HUB_TOKEN``: one write token, from the environment;
- ``--tokens-file F`` (or ``SE_ZOO_HUB_TOKENS_FILE=F``): one token per line as
  ``TOKEN:PERMISSION`` with PERMISSION ``read`` or ``write``; blank lines and lines starting with
  ``#`` are ignored. Keep the file readable by the server's user only.
- ``--token T`` still works, for throw-away local use.

Without any token the registry is read-only. Point clients at it with ``HF_ENDPOINT=<printed
URL>`` and ``HF_TOKEN=<token>``; uploads work with the client's defaults (Xet). The server lives in
``se_zoo.registry.app`` and needs the ``se-zoo[server]`` extra.
``--upstream URL`` makes it a pull-through mirror; ``se-zoo hub mirror`` and ``se-zoo hub import``
copy repositories and bundles (see ``se_zoo.registry.mirror.cli`` and docs/air-gapped.md).
"""
import argparse
import os
from pathlib import Path
from typing import Dict

from .errors import CommandError
from .mirror.cli import add_mirror_arguments, add_serve_upstream_arguments, run_mirror_command, upstream_from_args
TOKEN_ENV = "SE_ZOO_HUB_TOKEN"
TOKENS_FILE_ENV = "SE_ZOO_HUB_TOKENS_FILE"


def read_tokens_file(path: Path) -> Dict[str, str]:
    """Parse a tokens file (``TOKEN:PERMISSION`` per line).

    Args:
        path: The file to read.

    Returns:
        A mapping from token to ``"read"`` or ``"write"``.

    Raises:
        CommandError: if a line is not ``TOKEN:PERMISSION`` with a known permission (the message
            names the line number, never the token).
        FileNotFoundError: if the file does not exist.
    """
    tokens: Dict[str, str] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        token, sep, permission = line.rpartition(":")
        if not sep or not token or permission not in ("read", "write"):
            raise CommandError(f"tokens file {path} line {number}: expected TOKEN:read or TOKEN:write.")
        tokens[token] = permission
    return tokens


def tokens_from(args: argparse.Namespace, environ: Dict[str, str] = os.environ) -> Dict[str, str]:
    """The tokens to serve with: ``--tokens-file``/``--token``, else the environment (see module doc).

    Raises:
        ValueError: if the tokens file is malformed.
        FileNotFoundError: if the tokens file does not exist.
    """
    if args.tokens_file is not None:
        return read_tokens_file(args.tokens_file)
    if args.token:
        return {args.token: "write"}
    tokens = read_tokens_file(Path(environ[TOKENS_FILE_ENV])) if environ.get(TOKENS_FILE_ENV) else {}
    if environ.get(TOKEN_ENV):
        tokens[environ[TOKEN_ENV]] = "write"
    return tokens


def _size(text: str) -> int:
    from .limits import parse_size

    try:
        size = parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if size <= 0:
        raise argparse.ArgumentTypeError(f"expected a size above 0, got {text!r}")
    return size


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return seconds


def commit_policy_from(args: argparse.Namespace):
    """The :class:`~se_zoo.registry.store.policy.CommitPolicy` of ``--require-signed``, ``--trusted-keys``
    and ``--refuse-unsafe-pickles``.

    Raises:
        CommandError: if ``--require-signed`` comes without ``--trusted-keys``, or the policy is unreadable.
    """
    from .signing import SignatureError, TrustPolicy
    from .store.policy import CommitPolicy

    if args.require_signed and args.trusted_keys is None:
        raise CommandError(f"--require-signed {' '.join(args.require_signed)} needs --trusted-keys PATH "
                           "(the public keys commits must be signed with).")
    try:
        trusted = TrustPolicy.load(args.trusted_keys) if args.trusted_keys is not None else None
    except (SignatureError, ModuleNotFoundError) as exc:
        raise CommandError(str(exc)) from None
    return CommitPolicy(tuple(args.require_signed), trusted, args.refuse_unsafe_pickles)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve``, ``fsck``, ``mirror`` and ``import`` sub-subcommands and their arguments to ``parser``."""
    sub = parser.add_subparsers(dest="hub_command", required=True, metavar="{serve,fsck,mirror,import}")
    serve = sub.add_parser("serve", help="serve a registry directory over HTTP",
                           description="Serve a Hugging Face Hub-compatible registry from a directory.")
    serve.add_argument("--root", required=True, type=Path, help="registry directory (created if missing)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free port (default)")
    serve.add_argument("--workers", type=int, default=1,
                       help="server processes sharing the port and the root (default: 1)")
    serve.add_argument("--max-file-size", type=_size, default="50GB",
                       help="largest file accepted, e.g. 50GB (default, the Hub's LFS cap) or 512MiB")
    serve.add_argument("--quota", type=_size, default=None,
                       help="most bytes one namespace may hold, e.g. 100GB (default: no quota)")
    serve.add_argument("--scrub-interval", type=_seconds, default=None, metavar="SECONDS",
                       help="re-hash every blob in the background, a pass every SECONDS (e.g. 604800, weekly), "
                            "quarantining damaged ones (default: off; `se-zoo hub fsck` from cron does the same)")
    serve.add_argument("--scrub-rate", type=_size, default="64MiB", metavar="SIZE",
                       help="most bytes per second the scrub reads (default: 64MiB)")
    serve.add_argument("--require-signed", action="append", default=[], metavar="PATTERN",
                       help="refuse commits to repos matching PATTERN (namespace/name fnmatch, or a namespace) "
                            "unless model.sig verifies against --trusted-keys; repeatable (docs/security.md)")
    serve.add_argument("--trusted-keys", type=Path, metavar="PATH",
                       help="trust policy file or folder: which public keys sign which namespaces")
    serve.add_argument("--refuse-unsafe-pickles", action="store_true",
                       help="refuse commits adding a pickle file whose scan finds dangerous imports")
    serve.add_argument("--accel-redirect", metavar="PREFIX", default=None,
                       help="behind nginx: answer blob downloads with `X-Accel-Redirect: PREFIX<blob path>` "
                            "and no body, after auth and integrity checks; PREFIX is an internal nginx "
                            "location aliasing ROOT/blobs/ (see docs/hub.md)")
    auth = serve.add_mutually_exclusive_group()
    auth.add_argument("--tokens-file", type=Path,
                      help=f"file of TOKEN:read|write lines (or set {TOKENS_FILE_ENV}); "
                           f"a write token can also come from {TOKEN_ENV}")
    auth.add_argument("--token", help=f"a write token (visible in the process list: prefer {TOKEN_ENV})")
    add_serve_upstream_arguments(serve)
    fsck = sub.add_parser("fsck", help="check a registry directory; --gc removes its garbage",
                          description="Verify every blob, commit and ref of a registry root; with --gc remove "
                                      "unreferenced blobs and temporaries of dead processes.")
    fsck.add_argument("--root", required=True, type=Path, help="registry directory")
    fsck.add_argument("--gc", action="store_true", help="remove the garbage found")
    fsck.add_argument("--grace", type=float, default=3600.0,
                      help="seconds garbage must be old before it is removed (default: 3600, the lifetime "
                           "of an upload URL; keep it above the longest upload-to-commit time)")
    fsck.add_argument("--repair", action="store_true",
                      help="restore damaged and quarantined blobs: from this root's Xet data, else from the "
                           "upstream of the mirrored repositories referencing them (see --upstream)")
    fsck.add_argument("--upstream", metavar="URL",
                      help="with --repair: fetch from URL instead of the upstream each mirrored repository records")
    fsck.add_argument("--upstream-token-file", type=Path, metavar="FILE",
                      help="with --repair: file holding the upstream's token (default: $SE_ZOO_UPSTREAM_TOKEN)")
    add_mirror_arguments(sub)


def run(args: argparse.Namespace) -> int:
    """Run the chosen sub-subcommand; returns the exit status.

    Raises:
        CommandError: for input the user can fix (a bad tokens file, a missing root, a bad
            ``--grace``, a refused or unreadable copy); anything else is a bug and propagates.
    """
    try:
        return _run(args)
    except (FileNotFoundError, PermissionError) as exc:  # a path the user named
        raise CommandError(str(exc)) from None


def _run(args: argparse.Namespace) -> int:
    if args.hub_command in ("mirror", "import"):
        return run_mirror_command(args)
    if args.hub_command == "fsck":
        from .store.fsck import fsck

        if args.grace < 0:
            raise CommandError(f"--grace must be >= 0 seconds, got {args.grace}.")
        if not args.repair and (args.upstream or args.upstream_token_file):
            raise CommandError("--upstream and --upstream-token-file need --repair.")
        report = fsck(args.root, gc=args.gc, grace=args.grace)
        if args.repair:
            from .mirror.repair import repair
            from .mirror.upstream import read_token

            repair(args.root, report, upstream=args.upstream, token=read_token(args.upstream_token_file))
        print("\n".join(report.lines()))
        return 1 if report.problems else 0
    from .app import HubServer  # needs the server extra; keep `se-zoo --help` light

    try:
        server = HubServer(args.root, tokens_from(args), host=args.host, port=args.port, log_level="info",
                           workers=args.workers, max_file_size=args.max_file_size, quota=args.quota,
                           scrub_interval=args.scrub_interval, scrub_rate=args.scrub_rate,
                           upstream=upstream_from_args(args), commit_policy=commit_policy_from(args),
                           accel_redirect=args.accel_redirect)
    except ValueError as exc:  # an argument the user gave (workers, accel prefix, tokens)
        raise CommandError(str(exc)) from None
    return server.run(on_ready=lambda: print(server.endpoint, flush=True))
