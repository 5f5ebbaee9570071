"""``se-zoo hub``: the local registry's commands, delegated to the torch-free :mod:`se_zoo.registry.cli`.

The registry owns its sub-commands and flags (``serve``, ...); this module only
mounts them under ``se-zoo hub`` and reports the errors its user can fix as one line.
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
        CliError: for input the user can fix (``se_zoo.registry.errors.CommandError``).
    """
    from ..registry import cli as registry_cli
    from ..registry.errors import CommandError

    try:
        return registry_cli.run(args)
    except CommandError as exc:
        raise CliError(str(exc)) from None
