"""``se-zoo quickstart``: train, publish, pull and fine-tune on a local registry, offline."""
import argparse
import json
import os


def add_quickstart(parser: argparse.ArgumentParser) -> None:
    """Add the ``se-zoo quickstart`` arguments to ``parser``."""
    parser.add_argument("--root", help="registry directory for the local server (default: temporary)")
    parser.add_argument("--endpoint", default=None,
                        help="use this Hub instead of a local registry (default: HF_ENDPOINT if set, "
                             "else a local registry)")
    parser.add_argument("--token", default=None, help="write token for --endpoint (default: HF_TOKEN)")
    parser.add_argument("--namespace", default=None, help="user/organisation for the two repos")
    parser.add_argument("--epochs", type=int, default=5, help="publisher training epochs")
    parser.add_argument("--finetune-epochs", type=int, default=5, help="consumer fine-tuning epochs")
    parser.add_argument("--json", action="store_true", help="also print the report as JSON")
    parser.add_argument("--serve", action="store_true",
                        help="keep the local registry running after the report and print the models' web pages "
                             "(until Ctrl-C)")
    parser.set_defaults(run=run_quickstart)


def run_quickstart(args: argparse.Namespace) -> int:
    """Run the quickstart; returns the exit status."""
    from ..quickstart import quickstart

    report = quickstart(root=args.root, endpoint=args.endpoint or os.environ.get("HF_ENDPOINT") or None,
                        token=args.token, namespace=args.namespace, epochs=args.epochs,
                        finetune_epochs=args.finetune_epochs, serve=args.serve)
    if args.json:
        print(json.dumps(report, indent=2))
    return 0
