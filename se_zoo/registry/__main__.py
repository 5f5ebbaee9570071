"""``python -m se_zoo.registry``: the registry's own command line, torch-free.

Sub-commands: ``serve``, ``fsck``, ``mirror`` and ``import`` (see ``se_zoo.registry.cli``).
"""
import argparse
import sys
from pathlib import Path

from .cli import add_arguments, run
from .errors import CommandError


def main() -> int:
    """Parse ``sys.argv`` as ``se-zoo hub`` would and run the command (also the ``se-zoo-hub`` script)."""
    script = Path(sys.argv[0]).name
    parser = argparse.ArgumentParser(prog="python -m se_zoo.registry" if script == "__main__.py" else script,
                                     description="Serve a Hugging Face Hub-compatible registry.")
    add_arguments(parser)
    args = parser.parse_args()
    try:
        return run(args)
    except CommandError as exc:  # as `se-zoo hub` reports them: one line; bugs keep their traceback
        print(f"{parser.prog} {args.hub_command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
