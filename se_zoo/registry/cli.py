"""``se-zoo hub serve``: run the local Hugging Face Hub-compatible registry.

Usage::

    se-zoo hub serve --root DIR [--host 127.0.0.1] [--port N] [--token T | --tokens-file F]

``--port 0`` (the default) picks a free port; the endpoint URL is printed once the server
listens. ``--token T`` accepts one write token. ``--tokens-file F`` reads one token per line
as ``TOKEN:PERMISSION`` with PERMISSION ``read`` or ``write``; blank lines and lines starting
with ``#`` are ignored. Without either the registry is read-only. Point clients at it with
``HF_ENDPOINT=<printed URL>`` and ``HF_TOKEN=<token>``; uploads work with the client's defaults (Xet).
The server lives in ``se_zoo.registry.server`` and needs the ``se-zoo[server]`` extra.
``--upstream URL`` makes it a pull-through mirror; ``se-zoo hub mirror`` and ``se-zoo hub import``
copy repositories and bundles (see ``se_zoo.registry.mirror_cli`` and docs/air-gapped.md).
"""
import argparse
from pathlib import Path
from typing import Dict

from .mirror_cli import add_mirror_arguments, add_serve_upstream_arguments, run_mirror_command, upstream_from_args


def read_tokens_file(path: Path) -> Dict[str, str]:
    """Parse a tokens file (``TOKEN:PERMISSION`` per line).

    Args:
        path: The file to read.

    Returns:
        A mapping from token to ``"read"`` or ``"write"``.

    Raises:
        ValueError: if a line is not ``TOKEN:PERMISSION`` with a known permission (the message
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
            raise ValueError(f"tokens file {path} line {number}: expected TOKEN:read or TOKEN:write.")
        tokens[token] = permission
    return tokens


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve``, ``mirror`` and ``import`` sub-subcommands and their arguments to ``parser``."""
    sub = parser.add_subparsers(dest="hub_command", required=True, metavar="{serve,mirror,import}")
    serve = sub.add_parser("serve", help="serve a registry directory over HTTP",
                           description="Serve a Hugging Face Hub-compatible registry from a directory.")
    serve.add_argument("--root", required=True, type=Path, help="registry directory (created if missing)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free port (default)")
    auth = serve.add_mutually_exclusive_group()
    auth.add_argument("--token", help="the write token clients send as HF_TOKEN")
    auth.add_argument("--tokens-file", type=Path, help="file of TOKEN:read|write lines")
    add_serve_upstream_arguments(serve)
    add_mirror_arguments(sub)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted (or run ``mirror``/``import``); returns the exit status."""
    if args.hub_command != "serve":
        return run_mirror_command(args)
    from .server import HubServer  # needs the server extra; keep `se-zoo --help` light

    if args.tokens_file is not None:
        tokens = read_tokens_file(args.tokens_file)
    else:
        tokens = {args.token: "write"} if args.token else {}
    server = HubServer(args.root, tokens, host=args.host, port=args.port, log_level="info",
                       upstream=upstream_from_args(args))
    server.run(on_ready=lambda: print(server.endpoint, flush=True))
    return 0
