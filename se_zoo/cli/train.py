"""``se-zoo train``: the flags of :class:`se_zoo.TrainConfig`, one to one."""
import argparse
import ast
import os
from dataclasses import MISSING, fields
from typing import Any, Tuple

from ..training.config import TrainConfig
from ._errors import hub_errors, hub_repo


def _kwarg(text: str) -> Tuple[str, Any]:
    # Not timm.utils.ParseKwargs: importing timm.utils imports torch (``--help`` must not), and it
    # lets a malformed KEY=VALUE escape as a traceback instead of a usage error.
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def add_train(parser: argparse.ArgumentParser) -> None:
    """Add the ``se-zoo train`` arguments to ``parser`` (defaults come from :class:`TrainConfig`)."""
    add = parser.add_argument
    add("--model", required=True, help="model name, name.tag, hf-hub:ID or local-dir:DIR")
    add("--data", required=True, help="dataset root: DIR/train/<class>/<image> and DIR/val/<class>/<image>")
    add("--output", help="output folder: best model, metrics.jsonl, train_state/ (required unless --resume)")
    add("--dataset", help="timm dataset name, e.g. torch/cifar10 (default: ImageFolder tree)")
    add("--train-split", help="training split (default: %(default)s)")
    add("--val-split", help="validation split (default: %(default)s)")
    add("--classes", type=lambda s: s.split(","), help="comma-separated class folders to use, in label order")
    add("--num-classes", type=int, help="classifier outputs (default: the number of classes in the data)")
    add("--pretrained", action="store_true", help="start from the model's pretrained weights")
    add("--model-kwargs", nargs="*", type=_kwarg, metavar="KEY=VALUE",
        help="extra timm.create_model arguments, e.g. drop_path_rate=0.1")
    add("--img-size", type=int, help="input size (default: the model's)")
    add("--crop-pct", type=float, help="validation center-crop fraction (default: the model's)")
    add("--epochs", type=int, help="schedule length in epochs (default: %(default)s)")
    add("--batch-size", type=int, help="GLOBAL batch size, split over torchrun processes (default: %(default)s)")
    add("--opt", help="timm optimizer (default: %(default)s)")
    add("--lr", type=float, help="peak learning rate (default: %(default)s)")
    add("--weight-decay", type=float, help="weight decay (default: %(default)s)")
    add("--sched", help="timm LR scheduler, stepped per update (default: %(default)s)")
    add("--warmup-epochs", type=int, help="linear warm-up epochs (default: %(default)s)")
    add("--min-lr", type=float, help="final learning rate (default: %(default)s)")
    add("--smoothing", type=float, help="label smoothing (default: %(default)s)")
    add("--mixup", type=float, help="mixup alpha, 0 = off (default: %(default)s)")
    add("--cutmix", type=float, help="cutmix alpha, 0 = off (default: %(default)s)")
    add("--scale", type=float, nargs=2, metavar=("MIN", "MAX"),
        help="random-resized-crop area range (default: %(default)s)")
    add("--ratio", type=float, nargs=2, metavar=("MIN", "MAX"),
        help="random-resized-crop aspect range (default: %(default)s)")
    add("--hflip", type=float, help="horizontal-flip probability (default: %(default)s)")
    add("--no-aug", action="store_true", help="no random augmentation")
    add("--model-ema", action="store_true", help="keep, validate and save an EMA of the weights")
    add("--model-ema-decay", type=float, help="EMA decay (default: %(default)s)")
    add("--sync-bn", action="store_true", help="SyncBatchNorm under torchrun (CUDA only)")
    add("--channels-last", action="store_true", help="channels-last memory format")
    add("--no-amp", dest="amp", action="store_false", help="no autocast on CUDA")
    add("--seed", type=int, help="random seed (default: %(default)s)")
    add("--workers", type=int, help="data-loading workers per process (default: %(default)s)")
    add("--device", choices=("cpu", "cuda"), help="default: CUDA when available")
    add("--resume", metavar="DIR", help="continue the run in this output folder (same settings)")
    add("--stop-after", type=int, metavar="EPOCHS", help="end after this many epochs; continue with --resume")
    add("--push-to-hub", metavar="REPO", help="push the best model to this Hub repository when training ends")
    add("--sign-key", metavar="PEM", help="sign the push with this elliptic-curve private key (docs/security.md)")
    add("--no-progress", dest="progress", action="store_false", help="no progress bars")
    parser.set_defaults(run=run_train, **{
        f.name: (f.default if f.default is not MISSING else f.default_factory()) for f in fields(TrainConfig)
        if f.default is not MISSING or f.default_factory is not MISSING})


def run_train(args: argparse.Namespace) -> int:
    """Train with the parsed ``args``; returns the exit status."""
    from ..training.loop import train

    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig)}
    values["model_kwargs"] = dict(values["model_kwargs"] or {})
    values["scale"], values["ratio"] = tuple(values["scale"]), tuple(values["ratio"])
    values["progress"] = values["progress"] and not getattr(args, "quiet_logs", False)  # se-zoo -q
    primary = int(os.environ.get("RANK", "0") or 0) == 0
    with hub_errors(hub_repo(values["model"], values["push_to_hub"])):
        result = train(TrainConfig(**values))
    if primary:
        print(f"best top-1 {result.best_top1:.2f}% at epoch {result.best_epoch}; model in {result.output}")
        if result.push is not None:
            print(f"pushed to {getattr(result.push, 'commit_url', args.push_to_hub)}")
    return 0
