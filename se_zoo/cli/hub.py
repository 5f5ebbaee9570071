"""``se-zoo hub``: the local registry's commands, delegated to the torch-free :mod:`se_zoo.registry.cli`.

The registry owns its sub-commands and flags (``serve``, ...); this module only
mounts them under ``se-zoo hub`` and reports a bad ``--tokens-file`` as one line.
"""
import argparse

from ._errors import CliError


def add_hub(parser: argparse.ArgumentParser) -> None:
    """Add the registry's sub-commands and their arguments to ``parser``."""
    from ..registry import cli as registry_cli

    registry_cli.add_arguments(parser)
    parser.set_defaults(run=run_hub)


def run_hub(args: argparse.Namespace) -> int:
    """Run the registry sub-command ``args`` names; returns the exit status.

    Raises:
        CliError: if ``--tokens-file`` cannot be read or is malformed.
    """
    from ..registry import cli as registry_cli

    if getattr(args, "tokens_file", None) is not None:
        try:  # the argument's own check, before the registry starts
            registry_cli.read_tokens_file(args.tokens_file)
        except (ValueError, OSError) as exc:
            raise CliError(str(exc)) from None
    return registry_cli.run(args)
