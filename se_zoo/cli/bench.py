"""``se-zoo bench``: se-zoo's SE networks and SE layer timed side by side with timm.

Import timing lives in ``scripts/bench_imports.py``.
"""
import argparse
import json
import sys
from typing import Tuple

from ._errors import CliError

_AMP_CHOICES = ("bf16", "fp16")
_DEFAULT_LAYER_SHAPE = (32, 256, 56, 56)


def _shape_arg(text: str) -> Tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N,C,H,W integers, got {text!r}") from None


def add_bench(parser: argparse.ArgumentParser) -> None:
    """Add the ``se-zoo bench`` arguments to ``parser``."""
    parser.add_argument("--model", action="append", metavar="NAME",
                        help="se-zoo architecture to compare with timm and the plain model; repeatable "
                             "(default: se_zoo_resnet50)")
    parser.add_argument("--layer", action="store_true", help="benchmark the SE layer alone against the memory floor")
    parser.add_argument("--layer-shape", type=_shape_arg, default=_DEFAULT_LAYER_SHAPE, metavar="N,C,H,W",
                        help="input shape in layer mode (default: 32,256,56,56)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per step (default: 16)")
    parser.add_argument("--img-size", type=int, default=224, help="square input size (default: 224)")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--channels-last", dest="channels_last", action="store_true", default=True,
                     help="channels_last memory format (default)")
    fmt.add_argument("--contiguous", dest="channels_last", action="store_false", help="NCHW memory format")
    parser.add_argument("--compile", action="store_true", help="torch.compile every candidate")
    parser.add_argument("--train", action="store_true", help="time a training step (forward, backward, SGD step)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="(default: cpu)")
    parser.add_argument("--amp", choices=_AMP_CHOICES, help="autocast dtype (layer mode: the layer's dtype)")
    parser.add_argument("--iters", type=int, default=5, help="steps per timed sample (default: 5)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per candidate first (default: 3)")
    parser.add_argument("--repeats", type=int, default=7, help="timed samples (rounds) per candidate (default: 7)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory measurement")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    parser.add_argument("--plot", metavar="FILE.png", help="also save a bar chart (needs matplotlib)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress messages on stderr")
    parser.set_defaults(run=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    """Run the benchmark ``args`` describe and print it; returns the exit status.

    Raises:
        CliError: if ``--model`` is given with ``--layer``.
    """
    from ..bench import BenchConfig, bench_layer, bench_models, format_table, save_plot
    from ..bench.report import require_matplotlib

    if args.plot:
        require_matplotlib()  # before the benchmark, not after it
    if args.layer and args.model:
        raise CliError(f"--model applies to model mode only, got {args.model} with --layer")
    cfg = BenchConfig(
        batch_size=args.batch_size, img_size=args.img_size, channels_last=args.channels_last,
        compile=args.compile, train=args.train, device=args.device, amp=args.amp, iters=args.iters,
        warmup=args.warmup, repeats=args.repeats, threads=args.threads, memory=args.memory)

    def log(msg: str) -> None:
        if not args.quiet:
            print(f"[bench] {msg}", file=sys.stderr, flush=True)

    if args.layer:
        result = bench_layer(cfg, args.layer_shape, log)
    else:
        result = bench_models(args.model or ["se_zoo_resnet50"], cfg, log)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    if args.plot:
        save_plot(result, args.plot)
        log(f"plot saved to {args.plot}")
    return 0
