"""``se-zoo validate``: a model's loss, top-1 and top-5 on a dataset split."""
import argparse
import json
import os

from ._errors import hub_errors, hub_repo


def add_validate(parser: argparse.ArgumentParser) -> None:
    """Add the ``se-zoo validate`` arguments to ``parser``."""
    parser.add_argument("--model", required=True, help="model name, name.tag, hf-hub:ID or local-dir:DIR")
    parser.add_argument("--data", required=True, help="dataset root (ImageFolder: DIR/<split>/<class>/<image>)")
    parser.add_argument("--split", default="val", help="split to evaluate")
    parser.add_argument("--dataset", default="", help="timm dataset name (default: ImageFolder tree)")
    parser.add_argument("--classes", type=lambda s: s.split(","), default=None,
                        help="comma-separated class folders, in label order (default: the model's label "
                             "names, else every class)")
    parser.add_argument("--batch-size", type=int, default=256, help="images per batch and process")
    parser.add_argument("--img-size", type=int, default=None, help="input size (default: the model's)")
    parser.add_argument("--crop-pct", type=float, default=None, help="center-crop fraction (default: the model's)")
    parser.add_argument("--workers", type=int, default=2, help="data-loading worker processes")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: CUDA when available")
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    parser.set_defaults(run=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    """Validate and print the metrics (rank 0 only under torchrun); returns the exit status."""
    from ..training.evaluation import validate

    with hub_errors(hub_repo(args.model)):
        metrics = validate(args.model, args.data, split=args.split, dataset=args.dataset, classes=args.classes,
                           batch_size=args.batch_size, img_size=args.img_size, crop_pct=args.crop_pct,
                           workers=args.workers, device=args.device)
    if int(os.environ.get("RANK", "0") or 0) != 0:
        return 0
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"{metrics['model']} on {args.data} [{metrics['split']}], {metrics['count']} images: "
              f"loss {metrics['loss']:.4f}  top-1 {metrics['top1']:.2f}%  top-5 {metrics['top5']:.2f}%")
    return 0
