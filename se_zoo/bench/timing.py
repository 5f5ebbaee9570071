"""Timing: inputs, one step (inference or training), interleaved rounds, paired ratios, machine facts.

Candidates are warmed up, then timed round-robin (A B C A B C ...), ``iters``
steps per sample and ``repeats`` samples each, so slow drifts of a shared
machine hit every candidate alike; ratios are medians of per-round ratios.
CUDA is timed with CUDA events.
"""
import dataclasses
import os
import platform
import re
import statistics
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..errors import InvalidArgument
from .config import AMP_DTYPES, BenchConfig

if TYPE_CHECKING:
    import torch

def _autocast(cfg: BenchConfig):
    import torch

    dtype = getattr(torch, AMP_DTYPES[cfg.amp or "bf16"])
    return torch.autocast(cfg.device, dtype=dtype, enabled=cfg.amp is not None)


def _inputs(cfg: BenchConfig) -> Tuple["torch.Tensor", "torch.Tensor"]:
    import torch

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(cfg.batch_size, 3, cfg.img_size, cfg.img_size, generator=gen)
    target = torch.randint(0, 1000, (cfg.batch_size,), generator=gen)
    if cfg.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x.to(cfg.device), target.to(cfg.device)


def _make_step(model: "torch.nn.Module", cfg: BenchConfig, x: "torch.Tensor",
               target: "torch.Tensor") -> Callable[[], None]:
    import torch
    import torch.nn.functional as F

    forward = torch.compile(model) if cfg.compile else model
    if not cfg.train:
        def step() -> None:
            with torch.inference_mode(), _autocast(cfg):
                forward(x)
        return step

    # A small learning rate keeps the weights (and so the timing) stable over many steps.
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9)
    scaler = torch.amp.GradScaler(cfg.device, enabled=cfg.amp == "fp16")

    def step() -> None:
        with _autocast(cfg):
            loss = F.cross_entropy(forward(x), target)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    return step


def _synchronize(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _time_sample(step: Callable[[], None], cfg: BenchConfig) -> float:
    """Seconds per step, averaged over ``cfg.iters`` consecutive steps."""
    import torch

    if cfg.device == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        for _ in range(cfg.iters):
            step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / cfg.iters
    t0 = time.perf_counter()
    for _ in range(cfg.iters):
        step()
    return (time.perf_counter() - t0) / cfg.iters


def _round_robin(steps: Dict[str, Callable[[], None]], cfg: BenchConfig,
                 log: Callable[[str], None]) -> Dict[str, List[float]]:
    """Warm every step up, then time them interleaved; seconds per step, one entry per round."""
    log(f"warm-up: {cfg.warmup} step(s) each of {', '.join(steps)}")
    for _ in range(cfg.warmup):
        for step in steps.values():
            step()
    _synchronize(cfg.device)
    samples: Dict[str, List[float]] = {label: [] for label in steps}
    for r in range(cfg.repeats):
        for label, step in steps.items():
            samples[label].append(_time_sample(step, cfg))
        log(f"round {r + 1}/{cfg.repeats}: " + ", ".join(f"{k} {v[-1] * 1e3:.2f} ms" for k, v in samples.items()))
    return samples


def _paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    return statistics.median(n / d for n, d in zip(numerator, denominator))



def _machine(cfg: BenchConfig) -> Dict[str, Any]:
    import timm
    import torch

    from .. import __version__

    info = {
        "device": torch.cuda.get_device_name() if cfg.device == "cuda" else (_cpu_name() or platform.machine()),
        "cpu_threads": torch.get_num_threads(), "torch": torch.__version__, "timm": timm.__version__,
        "se_zoo": __version__, "python": platform.python_version(),
    }
    if hasattr(os, "getloadavg"):
        info["loadavg_start"] = [round(v, 2) for v in os.getloadavg()]
    return info


def _cpu_name() -> Optional[str]:
    try:
        with open("/proc/cpuinfo") as f:
            match = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
    except OSError:
        return None
    return f"{match.group(1).strip()} ({os.cpu_count()} logical CPUs)" if match else None


def _prepare(cfg: BenchConfig) -> None:
    import torch

    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise InvalidArgument("device is 'cuda' but torch finds no CUDA device")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)


def _config_dict(cfg: BenchConfig, **extra: Any) -> Dict[str, Any]:
    return {**dataclasses.asdict(cfg), **extra}


