"""``python -m se_zoo.registry``: the registry's own command line (``serve``, ``fsck``), torch-free."""
import argparse
import sys

from .cli import add_arguments, run


def main() -> int:
    """Parse ``sys.argv`` as ``se-zoo hub`` would and run the command."""
    parser = argparse.ArgumentParser(prog="python -m se_zoo.registry",
                                     description="Serve a Hugging Face Hub-compatible registry.")
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
