"""``se-zoo data``: export a small real dataset as an ImageFolder tree, offline."""
import argparse


def add_data(parser: argparse.ArgumentParser) -> None:
    """Add the ``se-zoo data`` sub-commands and their arguments to ``parser``."""
    sub = parser.add_subparsers(dest="dataset_name", required=True, metavar="DATASET")
    digits = sub.add_parser("digits", help="scikit-learn's handwritten digits (1,797 8x8 images, 10 classes)",
                            description="Export scikit-learn's bundled digits as an ImageFolder tree.")
    digits.add_argument("directory", metavar="DIR", help="where to write DIR/train/<digit>/ and DIR/val/<digit>/")
    digits.add_argument("--val-fraction", type=float, default=0.2, help="share of each class in val/")
    digits.add_argument("--seed", type=int, default=0, help="seed of the stratified split")
    parser.set_defaults(run=run_data)


def run_data(args: argparse.Namespace) -> int:
    """Export the dataset ``args`` names; returns the exit status."""
    from ..training.data import export_digits

    counts = export_digits(args.directory, val_fraction=args.val_fraction, seed=args.seed)
    print(f"wrote {counts['train']} train and {counts['val']} val images to {args.directory}")
    return 0
