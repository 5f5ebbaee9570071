"""``se-zoo info``: create a model and print its summary."""
import argparse

from ._errors import hub_errors, hub_repo


def add_info(parser: argparse.ArgumentParser) -> None:
    """Add the ``se-zoo info`` arguments to ``parser``."""
    parser.add_argument("model", help="model name, name.tag, hf-hub:ID or local-dir:DIR")
    parser.add_argument("--pretrained", action="store_true", help="load the pretrained weights")
    parser.add_argument("--img-size", type=int, default=224, help="input size for the forward check")
    parser.set_defaults(run=run_info)


def run_info(args: argparse.Namespace) -> int:
    """Print the summary of ``args.model``; returns the exit status."""
    from ..info import model_summary

    with hub_errors(hub_repo(args.model)):
        summary = model_summary(args.model, img_size=args.img_size, pretrained=args.pretrained)
    for key, value in summary.items():
        print(f"{key:>13}: {value:,}" if isinstance(value, int) else f"{key:>13}: {value}")
    return 0
