"""The ``se-zoo`` command line: every argument parser of the project, and the error policy.

One module per command group; each ``add_<command>(parser)`` adds the command's
arguments and sets ``run`` to the function that calls the library with typed
values. The command modules import the library inside their ``run`` functions
only, so ``se-zoo --help`` and ``se-zoo hub serve --help`` never import torch.

Errors: a :class:`CliError` (and the library's own :class:`se_zoo.errors.UserError`,
Hub not-found / auth errors, sha256 mismatches, unknown model names, missing
optional packages, all converted by :func:`se_zoo.cli._errors.user_errors`) prints
``se-zoo COMMAND: error: MESSAGE`` on one line and exits with status 1; argparse's
usage errors exit with 2. Any other exception is a bug and keeps its traceback.
"""
import argparse
import importlib
import os
import sys
from typing import List, Optional, Sequence, Tuple

from ._errors import CliError, user_errors

__all__ = ["COMMANDS", "CliError", "build_parser", "main"]

# (command, module defining add_<command>, one-line help)
COMMANDS: List[Tuple[str, str, str]] = [
    ("quickstart", "se_zoo.cli.quickstart", "train, publish, pull and fine-tune on a local registry, offline"),
    ("info", "se_zoo.cli.models", "create a model and print its summary"),
    ("push", "se_zoo.cli.transfer", "push a model or a saved directory to a Hub repo"),
    ("pull", "se_zoo.cli.transfer", "download a Hub repo, verify its weights' sha256 and load it"),
    ("hub", "se_zoo.cli.hub", "run the local Hub-compatible registry"),
    ("train", "se_zoo.cli.train", "train or fine-tune a model (one process or many under torchrun)"),
    ("validate", "se_zoo.cli.validate", "print a model's loss, top-1 and top-5 on a dataset split"),
    ("data", "se_zoo.cli.data", "export a small dataset as an ImageFolder tree (se-zoo data digits DIR)"),
    ("bench", "se_zoo.cli.bench", "benchmark se-zoo against timm"),
]


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The argument parser of every command.

    Args:
        only: A command name: only that command's module is imported and its arguments added
            (the others keep their one-line help), which is what ``main`` does to start fast.

    Returns:
        An ``argparse.ArgumentParser`` whose parsed namespace has ``command`` (the
        command's name) and ``run`` (the function to call with the namespace).
    """
    parser = argparse.ArgumentParser(prog="se-zoo", description="Squeeze-and-Excitation networks for timm.")
    loud = parser.add_mutually_exclusive_group()  # see se_zoo.verbosity
    loud.add_argument("-v", "--verbose", action="count", default=0,
                      help="also show other libraries' INFO logs (-vv: DEBUG)")
    loud.add_argument("-q", "--quiet", dest="quiet_logs", action="store_true",
                      help="errors only, no progress bars")  # dest: `bench -q` has its own quiet
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name, help_text in COMMANDS:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            getattr(importlib.import_module(module_name), f"add_{name}")(cmd)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``se-zoo`` console script and of ``python -m se_zoo.cli``.

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The exit status: 0 on success, 1 for an error the user can fix (one line
        on stderr), 130 on Ctrl-C; argparse exits with 2 on usage errors. Other
        exceptions propagate with their traceback.
    """
    from ..verbosity import configure

    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        named = [a for a in argv if a in {name for name, _, _ in COMMANDS}][:1]  # the command, if one is given
        args = build_parser(named[0] if named else None).parse_args(argv)
    except KeyboardInterrupt:
        print("se-zoo: interrupted", file=sys.stderr)
        return 130
    configure(-1 if args.quiet_logs else args.verbose, primary=int(os.environ.get("RANK", "0") or 0) == 0)
    try:
        with user_errors():
            return int(args.run(args) or 0)
    except CliError as exc:
        print(f"se-zoo {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("se-zoo: interrupted", file=sys.stderr)
        return 130
