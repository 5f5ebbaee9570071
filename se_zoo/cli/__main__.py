"""``python -m se_zoo.cli``: the ``se-zoo`` command (also under ``torchrun -m se_zoo.cli``)."""
import sys

from se_zoo.cli import main

if __name__ == "__main__":
    sys.exit(main())
