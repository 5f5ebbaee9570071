"""The ``se-zoo`` command line: parses arguments and calls the library.

Each subcommand lives in the module that implements it; that module provides
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only
when their subcommand runs (``add_arguments`` of a module must import nothing
heavy at module level), so ``se-zoo --help`` stays fast and optional extras
(the server) are needed only by the commands that use them.
"""
import argparse
import importlib
import sys
from typing import List, Optional, Sequence, Tuple

# (command, implementing module, one-line help)
COMMANDS: List[Tuple[str, str, str]] = [
    ("quickstart", "se_zoo.quickstart", "train, publish, pull and fine-tune on a local registry, offline"),
    ("info", "se_zoo.info", "create a model and print its summary"),
    ("push", "se_zoo.hub.cli_push", "push a model or a saved directory to a Hub repo"),
    ("pull", "se_zoo.hub.cli_pull", "download a Hub repo, verify its weights' sha256 and load it"),
    ("hub", "se_zoo.registry.cli", "run the local Hub-compatible registry"),
    ("train", "se_zoo.train", "train or fine-tune a model (one process or many under torchrun)"),
    ("validate", "se_zoo.validate", "print a model's loss, top-1 and top-5 on a dataset split"),
    ("data", "se_zoo.data", "export a small dataset as an ImageFolder tree (se-zoo data digits DIR)"),
    ("bench", "se_zoo.bench", "benchmark se-zoo against timm"),
]


class CliError(Exception):
    """An error to report as one line on stderr with a non-zero exit."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand.

    Returns:
        An ``argparse.ArgumentParser`` whose parsed namespace has ``command`` and
        ``module`` set.
    """
    parser = argparse.ArgumentParser(prog="se-zoo", description="Squeeze-and-Excitation networks for timm.")
    # CLI flags: -v / -q (see se_zoo.verbosity)
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument("-v", "--verbose", action="count", default=0,
                      help="also show other libraries' INFO logs (-vv: DEBUG)")
    loud.add_argument("-q", "--quiet", dest="quiet_logs", action="store_true",
                      help="errors only, no progress bars")  # dest: `bench -q` has its own quiet
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name, help_text in COMMANDS:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module_name).add_arguments(cmd)
        cmd.set_defaults(module=module_name)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``se-zoo`` console script.

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The process exit status (0 on success). Errors a user can fix print one
        line on stderr and return 1 (2 for usage errors, as argparse does).
    """
    import os

    from .verbosity import configure

    try:
        args = build_parser().parse_args(argv)
        configure(-1 if args.quiet_logs else args.verbose, primary=int(os.environ.get("RANK", "0") or 0) == 0)
        return int(importlib.import_module(args.module).run(args) or 0)
    except KeyboardInterrupt:
        print("se-zoo: interrupted", file=sys.stderr)
        return 130
    except (CliError, ValueError, ImportError, RuntimeError, OSError) as exc:
        print(f"se-zoo {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    # `python -m se_zoo.cli` runs this file as __main__; use the package's module so
    # that commands raising se_zoo.cli.CliError are caught by the same class.
    from se_zoo.cli import main as _main

    sys.exit(_main())
