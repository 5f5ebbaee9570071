"""``se-zoo bench``: speed of se-zoo's SE networks and SE layer, side by side with timm.

Model mode times, for each se-zoo model, three candidates in one run:

* the se-zoo model;
* its timm counterpart, the baseline of every ratio: the SE model named in
  ``TIMM_EQUIVALENTS`` (``seresnet50`` for ``se_zoo_resnet50``) or, where timm has
  the architecture without SE only (the MobileNets), the se-zoo model with every
  SE layer replaced by timm's own (``timm.models._efficientnet_blocks.SqueezeExcite``).
  It gets the se-zoo model's weights, so the run also checks that both compute the
  same logits;
* the plain model, the same architecture without SE: the timm model named in
  :data:`PLAIN_EQUIVALENTS` (``resnet50``), else the timm counterpart with its SE
  layers replaced by identities.

Layer mode times the SE layer alone against the memory-bandwidth floor measured
in the same run: the floor of an op is the bytes it must move divided by the
bandwidth of ``out.copy_(x)`` on a tensor of the same size.

Import mode times ``import timm`` and ``import se_zoo`` in fresh interpreters.

Method: candidates are built and warmed up, then timed round-robin
(A B C A B C ...), ``iters`` steps per sample and ``repeats`` samples each, so
slow drifts of a shared machine hit every candidate alike. Latency is the median
sample; ratios are medians of the per-round ratios, each taken between samples
of the same round. CUDA is timed with CUDA events. Peak memory is the growth of
allocated memory during one step: the CUDA allocator's high-water mark, or on
CPU the resident-set high-water mark of a fresh process per candidate (Linux).
"""
import argparse
import dataclasses
import gc
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .architectures import PLAIN_EQUIVALENTS

__all__ = [
    "BenchConfig", "Candidate", "PLAIN_EQUIVALENTS", "model_candidates", "bench_models", "bench_layer",
    "bench_imports", "format_table", "save_plot",
]

_AMP_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}
_DEFAULT_LAYER_SHAPE = (32, 256, 56, 56)


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What to run and how to time it.

    Args:
        batch_size: Images per step (model mode).
        img_size: Square input resolution (model mode).
        channels_last: Use ``torch.channels_last`` for models and inputs.
        compile: Wrap every candidate in ``torch.compile``.
        train: Time a training step (forward, backward, SGD step) instead of inference.
        device: ``"cpu"`` or ``"cuda"``.
        amp: ``None`` (fp32), ``"bf16"`` or ``"fp16"`` autocast; in layer mode the dtype of
            the layer and its input.
        iters: Steps per timed sample.
        warmup: Untimed steps per candidate before the first sample.
        repeats: Timed samples per candidate.
        threads: CPU threads for torch (``None``: torch's default).
        memory: Measure peak memory.

    Raises:
        ValueError: if a field is out of range.
    """

    batch_size: int = 16
    img_size: int = 224
    channels_last: bool = True
    compile: bool = False
    train: bool = False
    device: str = "cpu"
    amp: Optional[str] = None
    iters: int = 5
    warmup: int = 3
    repeats: int = 7
    threads: Optional[int] = None
    memory: bool = True

    def __post_init__(self):
        for name in ("batch_size", "img_size", "iters", "repeats"):
            _check_int(name, getattr(self, name), 1)
        _check_int("warmup", self.warmup, 0)
        if self.threads is not None:
            _check_int("threads", self.threads, 1)
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {self.device!r}")
        if self.amp is not None and self.amp not in _AMP_DTYPES:
            raise ValueError(f"amp must be None, 'bf16' or 'fp16', got {self.amp!r}")


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One model of a comparison.

    Args:
        label: Name shown in the table.
        role: ``"se-zoo"``, ``"timm"`` (the baseline) or ``"plain"`` (no SE).
        arch: The timm architecture to create.
        se: ``"own"`` keeps the SE layers of ``arch``, ``"none"`` replaces them by
            identities, ``"timm"`` replaces se-zoo's by timm's.
    """

    label: str
    role: str
    arch: str
    se: str = "own"


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def model_candidates(name: str) -> List[Candidate]:
    """The se-zoo model ``name``, its timm counterpart and its plain twin.

    Args:
        name: An se-zoo architecture (a key of ``se_zoo.TIMM_EQUIVALENTS``).

    Returns:
        Candidates in timing order: se-zoo, timm (the baseline), plain.

    Raises:
        ValueError: if ``name`` is not an se-zoo architecture.
    """
    from .models import TIMM_EQUIVALENTS

    if name not in TIMM_EQUIVALENTS:
        raise ValueError(f"model must be an se-zoo architecture ({', '.join(sorted(TIMM_EQUIVALENTS))}), "
                         f"got {name!r}")
    reference = TIMM_EQUIVALENTS[name]
    if _count_se(reference):
        timm_se = Candidate(reference, "timm", reference)
    else:  # timm has this architecture without SE only
        timm_se = Candidate(f"{name} (timm SE)", "timm", name, se="timm")
    plain = PLAIN_EQUIVALENTS.get(name)
    return [
        Candidate(name, "se-zoo", name),
        timm_se,
        Candidate(plain, "plain", plain) if plain else
        Candidate(f"{timm_se.label} without SE", "plain", timm_se.arch, se="none"),
    ]


def _se_types() -> Tuple[type, ...]:
    from timm.layers import SEModule
    from timm.models import senet
    from timm.models._efficientnet_blocks import SqueezeExcite as EfficientNetSE

    from .layers import SqueezeExcite

    return SEModule, senet.SEModule, EfficientNetSE, SqueezeExcite


def _count_se(arch: str) -> int:
    """SE layers in ``arch``, built on the meta device (no memory, no init cost)."""
    import timm
    import torch

    from . import models  # noqa: F401  (registers the se-zoo architectures)

    with torch.device("meta"):
        return sum(isinstance(m, _se_types()) for m in timm.create_model(arch).modules())


def _replace_se(model: "torch.nn.Module", se: str) -> int:
    """Replace the SE layers of ``model`` by identities (``se="none"``) or timm's (``"timm"``, fresh weights)."""
    from timm.models._efficientnet_blocks import SqueezeExcite as EfficientNetSE
    from torch import nn

    from .layers import SqueezeExcite

    count = 0
    for module in list(model.modules()):
        for child_name, child in module.named_children():
            if se == "none" and isinstance(child, _se_types()):
                setattr(module, child_name, nn.Identity())
            elif se == "timm" and isinstance(child, SqueezeExcite):
                if child.fc1.bias is None:
                    raise ValueError(f"timm's SqueezeExcite always has biases; {child_name} has none")
                timm_se = EfficientNetSE(child.channels, rd_channels=child.fc1.out_channels,
                                         act_layer=type(child.act), gate_layer=type(child.gate))
                setattr(module, child_name, timm_se)
            else:
                continue
            count += 1
    return count


def _copy_weights(source: "torch.nn.Module", target: "torch.nn.Module") -> None:
    # By position: the timm counterpart has se-zoo's tensors in se-zoo's order, and
    # its own names for the SE convs when they are timm's EfficientNet SE layers.
    import torch

    src, dst = list(source.state_dict().values()), list(target.state_dict().values())
    if len(src) != len(dst) or any(a.shape != b.shape for a, b in zip(src, dst)):
        raise ValueError(f"{type(target).__name__} does not have the tensors of {type(source).__name__}")
    with torch.no_grad():
        for a, b in zip(src, dst):
            b.copy_(a)


def _randomize_norms(model: "torch.nn.Module", seed: int = 0) -> None:
    # Fresh BN layers are identities (and timm zero-inits the last BN of each
    # block), which would make the logits check blind to the SE branch.
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                for t, lo, hi in ((m.weight, 0.5, 1.5), (m.bias, -0.2, 0.2),
                                  (m.running_mean, -0.2, 0.2), (m.running_var, 0.5, 1.5)):
                    t.copy_(torch.empty(t.shape).uniform_(lo, hi, generator=gen))


def _build(candidate: Candidate, cfg: BenchConfig) -> "torch.nn.Module":
    import timm
    import torch

    from . import models  # noqa: F401  (registers the se-zoo architectures)

    if candidate.se not in ("own", "none", "timm"):
        raise ValueError(f"se must be 'own', 'none' or 'timm', got {candidate.se!r}")
    model = timm.create_model(candidate.arch)
    if candidate.se != "own" and _replace_se(model, candidate.se) == 0:
        raise ValueError(f"{candidate.arch} has no SE layer to replace")
    model = model.to(cfg.device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.train(cfg.train)


def _autocast(cfg: BenchConfig):
    import torch

    dtype = getattr(torch, _AMP_DTYPES[cfg.amp or "bf16"])
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


def _read_status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M).group(1))


def _cpu_peak_step_mib(step: Callable[[], None]) -> float:
    """Resident-set growth during one ``step()``, in MiB (Linux)."""
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident set
    before = _read_status_kib("VmRSS")
    step()
    return (_read_status_kib("VmHWM") - before) / 1024


def _memory_probe_main() -> None:
    """Entry point of the per-candidate CPU memory probe process (argv[1]: JSON)."""
    import torch

    payload = json.loads(sys.argv[1])
    cfg, candidate = BenchConfig(**payload["config"]), Candidate(**payload["candidate"])
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    x, target = _inputs(cfg)
    step = _make_step(_build(candidate, cfg), cfg, x, target)
    for _ in range(max(cfg.warmup, 1)):
        step()
    print(json.dumps({"peak_mib": _cpu_peak_step_mib(step)}))


def _cpu_memory_supported() -> bool:
    return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc" \
        and os.path.exists("/proc/self/clear_refs")


def _cpu_peak_memory(candidate: Candidate, cfg: BenchConfig) -> float:
    # A fresh process per candidate, with glibc told to map every allocation of
    # 64 KiB or more on its own, so freed tensors leave the resident set at once
    # and the high-water mark of one step is the step's own peak.
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    payload = json.dumps({"config": dataclasses.asdict(cfg), "candidate": dataclasses.asdict(candidate)})
    proc = subprocess.run(
        [sys.executable, "-c", "from se_zoo.bench import _memory_probe_main; _memory_probe_main()", payload],
        env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe of {candidate.label} failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])["peak_mib"]


def _cuda_peak_step_mib(step: Callable[[], None]) -> float:
    import torch

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    step()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2 ** 20


def _machine(cfg: BenchConfig) -> Dict[str, Any]:
    import timm
    import torch

    from . import __version__

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
        raise ValueError("device is 'cuda' but torch finds no CUDA device")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)


def _config_dict(cfg: BenchConfig, **extra: Any) -> Dict[str, Any]:
    return {**dataclasses.asdict(cfg), **extra}


def bench_models(names: Sequence[str], cfg: BenchConfig,
                 log: Callable[[str], None] = lambda msg: None) -> Dict[str, Any]:
    """Time each se-zoo model against its timm counterpart and its plain twin.

    Args:
        names: se-zoo architectures; each gets its own interleaved run.
        cfg: What to run and how to time it.
        log: Receives progress messages.

    Returns:
        A JSON-ready dict: ``mode`` (``"model"``), ``config``, ``machine`` and one entry
        per model in ``results``, with per-candidate ``latency_ms`` (median),
        ``images_per_s``, ``peak_mem_mib``, ``ratio`` (throughput relative to the timm
        counterpart, median of per-round ratios) and ``samples_ms``, the
        ``se_overhead`` of se-zoo and timm over the plain model, and
        ``logits_max_rel_diff``, the largest logit difference between se-zoo and
        timm on the benchmark input relative to the largest logit.

    Raises:
        ValueError: if a name is not an se-zoo architecture or ``cfg.device`` is unusable.
    """
    groups = [(name, model_candidates(name)) for name in names]  # validate every name first
    _prepare(cfg)
    out: Dict[str, Any] = {"mode": "model", "config": _config_dict(cfg), "machine": _machine(cfg), "results": []}
    x, target = _inputs(cfg)
    for name, candidates in groups:
        log(f"{name}: building {', '.join(c.label for c in candidates)}")
        built = {c.role: _build(c, cfg) for c in candidates}
        _randomize_norms(built["se-zoo"])
        _copy_weights(built["se-zoo"], built["timm"])
        rel_diff = _logit_diff(built["se-zoo"], built["timm"], cfg, x)
        steps = {c.label: _make_step(built[c.role], cfg, x, target) for c in candidates}
        samples = _round_robin(steps, cfg, log)
        peaks: Dict[str, Optional[float]] = {c.label: None for c in candidates}
        notes = []
        if cfg.memory and cfg.device == "cuda":
            peaks = {label: _cuda_peak_step_mib(step) for label, step in steps.items()}
        elif cfg.memory and _cpu_memory_supported():
            for c in candidates:
                log(f"memory probe: {c.label}")
                peaks[c.label] = _cpu_peak_memory(c, cfg)
        elif cfg.memory:
            notes.append("peak memory on CPU needs Linux with glibc; not measured")
        base = samples[candidates[1].label]
        plain = samples[candidates[2].label]
        if candidates[1].se == "timm":
            notes.append(f"timm has {name}'s architecture without SE only: its counterpart is "
                         f"{name} with timm's EfficientNet SqueezeExcite in place of se-zoo's")
        if candidates[2].se == "none":
            notes.append(f"timm registers no plain twin of {name}: the plain model is "
                         f"{candidates[1].label} with its SE layers replaced by identities")
        out["results"].append({
            "model": name,
            "baseline": candidates[1].label,
            "logits_max_rel_diff": rel_diff,
            "candidates": [{
                "label": c.label, "role": c.role, "arch": c.arch,
                "latency_ms": statistics.median(samples[c.label]) * 1e3,
                "images_per_s": cfg.batch_size / statistics.median(samples[c.label]),
                "peak_mem_mib": peaks[c.label],
                "ratio": _paired_ratio(base, samples[c.label]),
                "samples_ms": [t * 1e3 for t in samples[c.label]],
            } for c in candidates],
            "se_overhead": {c.role: _paired_ratio(samples[c.label], plain) - 1 for c in candidates[:2]},
            "notes": notes,
        })
        del steps, built
        gc.collect()
    if hasattr(os, "getloadavg"):
        out["machine"]["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    return out


def _logit_diff(model: "torch.nn.Module", reference: "torch.nn.Module", cfg: BenchConfig,
                x: "torch.Tensor") -> float:
    import torch

    model.eval(), reference.eval()
    with torch.inference_mode(), _autocast(cfg):
        expected = reference(x).float()
        diff = ((model(x).float() - expected).abs().max() / expected.abs().max()).item()
    model.train(cfg.train), reference.train(cfg.train)
    return diff


# Layer mode: (label, op, bytes moved in units of the input's size). The squeeze
# reads the input once and the scale reads it again and writes the output; the
# fused epilogue also reads the shortcut.
_LAYER_OPS = (
    ("copy", "out.copy_(x)", 2),
    ("timm SEModule", "x * s", 3),
    ("se-zoo SqueezeExcite", "x * s", 3),
    ("timm SE, add, ReLU", "relu(x * s + shortcut)", 4),
    ("se-zoo scale_add_act", "relu(x * s + shortcut)", 4),
)


def _check_shape(shape: Sequence[int]) -> Tuple[int, int, int, int]:
    if len(shape) != 4 or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
        raise ValueError(f"shape must be 4 positive integers (N, C, H, W), got {tuple(shape)!r}")
    return tuple(shape)


def bench_layer(cfg: BenchConfig, shape: Sequence[int] = _DEFAULT_LAYER_SHAPE,
                log: Callable[[str], None] = lambda msg: None) -> Dict[str, Any]:
    """Time the SE layer alone, in inference, against the memory-bandwidth floor.

    The run interleaves a plain copy (which gives the bandwidth), timm's ``SEModule``
    and se-zoo's ``SqueezeExcite`` (``x * s``, a fresh output), and the SE epilogue of
    a residual block, ``relu(x * s + shortcut)``, as timm's blocks compute it and as
    se-zoo's ``scale_add_act`` does (in place on the block's temporary ``x``).

    Args:
        cfg: Device, dtype (``amp``), memory format, compile and timing settings;
            ``batch_size`` and ``img_size`` are unused.
        shape: Input shape ``(N, C, H, W)``.
        log: Receives progress messages.

    Returns:
        A JSON-ready dict: ``mode`` (``"layer"``), ``config``, ``machine``, ``bytes`` of
        one input, ``bandwidth_gb_s`` of the copy, the largest output difference
        between se-zoo and timm, and per candidate its ``latency_ms`` (median),
        ``floor_ms`` (bytes it must move / copy bandwidth), ``x_floor`` and
        ``speedup_vs_timm`` (medians of per-round ratios).

    Raises:
        ValueError: if ``shape`` is not 4 positive integers, ``cfg.train`` is set or
            ``cfg.device`` is unusable.
    """
    import torch
    from timm.layers import SEModule
    from torch import nn

    from .layers import SqueezeExcite

    n, c, h, w = _check_shape(shape)
    if cfg.train:
        raise ValueError("train must be False in layer mode: the layer benchmark times inference")
    _prepare(cfg)
    machine = _machine(cfg)
    dd = {"device": cfg.device, "dtype": getattr(torch, _AMP_DTYPES[cfg.amp]) if cfg.amp else torch.float32}
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen).to(**dd).contiguous(memory_format=fmt)
    shortcut = torch.randn(shape, generator=gen).to(**dd).contiguous(memory_format=fmt)
    x_fused, out = x.clone(), torch.empty_like(x)
    reference, ours = SEModule(c, **dd).eval(), SqueezeExcite(c, **dd).eval()
    ours.load_state_dict(reference.state_dict())
    relu = nn.ReLU(inplace=True)

    def timm_epilogue(x: torch.Tensor) -> torch.Tensor:
        y = reference(x)  # as timm's Bottleneck: se, then in-place add and activation
        y += shortcut
        return relu(y)

    fns = [lambda: out.copy_(x), lambda: reference(x), lambda: ours(x),
           lambda: timm_epilogue(x), lambda: ours.scale_add_act(x_fused, shortcut, relu)]
    if cfg.compile:
        fns = fns[:1] + [torch.compile(fn) for fn in fns[1:]]
    with torch.inference_mode():
        diff = {"scale": (ours(x) - reference(x)).abs().max().item(),
                "epilogue": (ours.scale_add_act(x.clone(), shortcut, relu) - timm_epilogue(x)).abs().max().item()}

    def in_inference(fn: Callable[[], Any]) -> Callable[[], None]:
        def step() -> None:
            with torch.inference_mode():
                fn()
        return step

    samples = _round_robin({label: in_inference(fn) for (label, _, _), fn in zip(_LAYER_OPS, fns)}, cfg, log)
    copy = samples["copy"]
    nbytes = x.numel() * x.element_size()
    result: Dict[str, Any] = {
        "mode": "layer", "config": _config_dict(cfg, shape=list(shape)), "machine": machine,
        "dtype": str(dd["dtype"]).replace("torch.", ""), "bytes": nbytes,
        "bandwidth_gb_s": 2 * nbytes / statistics.median(copy) / 1e9,
        "max_abs_diff": diff, "candidates": [],
    }
    timm_of = {"scale": samples["timm SEModule"], "epilogue": samples["timm SE, add, ReLU"]}
    for label, op, moves in _LAYER_OPS:
        kind = "epilogue" if "shortcut" in op else "scale"
        result["candidates"].append({
            "label": label, "op": op, "bytes_moved": moves * nbytes,
            "latency_ms": statistics.median(samples[label]) * 1e3,
            "floor_ms": statistics.median(copy) * moves / 2 * 1e3,
            "x_floor": _paired_ratio(samples[label], [t * moves / 2 for t in copy]),
            "speedup_vs_timm": None if label == "copy" else _paired_ratio(timm_of[kind], samples[label]),
            "samples_ms": [t * 1e3 for t in samples[label]],
        })
    if hasattr(os, "getloadavg"):
        result["machine"]["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    return result


_IMPORTS = (("python", "pass"), ("timm", "import timm"), ("se_zoo", "import se_zoo"))


def bench_imports(repeats: int = 10, log: Callable[[str], None] = lambda msg: None) -> Dict[str, Any]:
    """Time ``import timm`` and ``import se_zoo``, each in a fresh interpreter.

    Rounds interleave a bare interpreter (``python -c pass``), ``import timm`` and
    ``import se_zoo``, after one untimed round that warms the file cache. The
    cost of an import is its wall time minus the bare interpreter's in the same
    round. se-zoo's auto-registration hook is switched off
    (``SE_ZOO_AUTOREGISTER=0``), else ``import timm`` would import se-zoo too.

    Args:
        repeats: Timed rounds (>= 1).
        log: Receives progress messages.

    Returns:
        A JSON-ready dict: ``mode`` (``"imports"``), ``config``, ``machine`` and per
        module its median ``wall_ms``, ``import_ms`` (bare interpreter subtracted)
        and ``ratio`` to timm's import cost (median of per-round ratios).

    Raises:
        ValueError: if ``repeats`` is not an integer >= 1.
        RuntimeError: if an import fails.
    """
    _check_int("repeats", repeats, 1)
    machine = _machine(BenchConfig())
    env = dict(os.environ, SE_ZOO_AUTOREGISTER="0")
    samples: Dict[str, List[float]] = {label: [] for label, _ in _IMPORTS}
    for r in range(repeats + 1):
        for label, code in _IMPORTS:
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
            elapsed = time.perf_counter() - t0
            if proc.returncode != 0:
                raise RuntimeError(f"`{code}` failed: {proc.stderr.strip()[-2000:]}")
            if r:
                samples[label].append(elapsed)
        log(f"round {r}/{repeats}" + (" (warm-up)" if not r else ""))
    bare = samples["python"]
    cost = {label: [t - b for t, b in zip(samples[label], bare)] for label, _ in _IMPORTS}
    result: Dict[str, Any] = {
        "mode": "imports", "config": {"repeats": repeats}, "machine": machine, "candidates": [{
            "label": label, "code": code,
            "wall_ms": statistics.median(samples[label]) * 1e3,
            "import_ms": statistics.median(cost[label]) * 1e3,
            "ratio": None if label == "python" else _paired_ratio(cost[label], cost["timm"]),
            "samples_ms": [t * 1e3 for t in samples[label]],
        } for label, code in _IMPORTS]}
    if hasattr(os, "getloadavg"):
        result["machine"]["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    return result


def _describe(cfg: Dict[str, Any]) -> str:
    parts = [cfg["device"], cfg["amp"] or "fp32"]
    if "shape" not in cfg:
        parts += [f"batch {cfg['batch_size']}", f"{cfg['img_size']}px"]
    parts += ["channels_last" if cfg["channels_last"] else "contiguous",
              "compiled" if cfg["compile"] else "eager", "training step" if cfg["train"] else "inference",
              f"{cfg['repeats']} rounds x {cfg['iters']} steps"]
    return ", ".join(parts)


def _fmt(value: Optional[float], spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(result: Dict[str, Any]) -> str:
    """Render a :func:`bench_models` or :func:`bench_layer` result as a text table.

    Args:
        result: The dict either function returned.

    Returns:
        The table, several lines without a trailing newline.
    """
    m = result["machine"]
    machine = (f"{m['device']}, {m['cpu_threads']} threads, torch {m['torch']}, timm {m['timm']}, "
               f"load {m.get('loadavg_start', '?')} -> {m.get('loadavg_end', '?')}")
    if result["mode"] == "imports":
        lines = [f"import cost in a fresh interpreter, median of {result['config']['repeats']} rounds | {machine}",
                 f"{'module':<8} {'wall ms':>9} {'import ms':>10} {'vs timm':>8}"]
        lines += [f"{c['label']:<8} {c['wall_ms']:>9.1f} {c['import_ms']:>10.1f} {_fmt(c['ratio'], '>8.3f')}"
                  for c in result["candidates"]]
        return "\n".join(lines)
    lines = [f"{_describe(result['config'])} | {machine}"]
    if result["mode"] == "layer":
        lines.append(f"SE layer {tuple(result['config']['shape'])} {result['dtype']}: copy bandwidth "
                     f"{result['bandwidth_gb_s']:.1f} GB/s, se-zoo vs timm max |diff| "
                     f"{max(result['max_abs_diff'].values()):.2e}")
        lines.append(f"{'candidate':<22} {'computes':<24} {'ms':>9} {'floor ms':>9} {'x floor':>8} {'vs timm':>8}")
        for c in result["candidates"]:
            lines.append(f"{c['label']:<22} {c['op']:<24} {c['latency_ms']:>9.2f} {c['floor_ms']:>9.2f} "
                         f"{c['x_floor']:>8.2f} {_fmt(c['speedup_vs_timm'], '>8.3f')}")
        return "\n".join(lines)
    for r in result["results"]:
        lines.append("")
        lines.append(f"{r['model']}: logits vs {r['baseline']}: max |diff| / max |logit| {r['logits_max_rel_diff']:.1e}; "
                     f"SE overhead over plain: se-zoo {r['se_overhead']['se-zoo']:+.1%}, "
                     f"timm {r['se_overhead']['timm']:+.1%}")
        lines.append(f"{'candidate':<34} {'role':<7} {'img/s':>9} {'ms/step':>9} {'peak MiB':>9} {'vs timm':>8}")
        for c in r["candidates"]:
            lines.append(f"{c['label']:<34} {c['role']:<7} {c['images_per_s']:>9.1f} {c['latency_ms']:>9.1f} "
                         f"{_fmt(c['peak_mem_mib'], '>9.0f')} {c['ratio']:>8.3f}")
        lines.extend(f"note: {note}" for note in r["notes"])
    return "\n".join(lines)


def save_plot(result: Dict[str, Any], path: str) -> None:
    """Save a bar chart of a benchmark result as an image.

    Model mode plots each candidate's throughput relative to timm; layer mode
    plots each candidate's time in multiples of its memory-bandwidth floor.

    Args:
        result: The dict :func:`bench_models` or :func:`bench_layer` returned.
        path: Output file; the format follows the extension (``.png``, ``.svg``, ...).

    Raises:
        RuntimeError: if matplotlib is not installed (``pip install se-zoo[plot]``).
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError("--plot needs matplotlib: pip install 'se-zoo[plot]'") from exc

    fig, ax = plt.subplots(figsize=(8, 4.5))
    if result["mode"] == "imports":
        cands = [c for c in result["candidates"] if c["ratio"] is not None]
        ax.bar([c["label"] for c in cands], [c["ratio"] for c in cands], color="tab:blue")
        ax.set_ylabel("import cost relative to timm (lower is better)")
        ax.set_title("import cost")
    elif result["mode"] == "layer":
        cands = result["candidates"]
        ax.bar([c["label"] for c in cands], [c["x_floor"] for c in cands], color="tab:blue")
        ax.axhline(1.0, color="black", linewidth=1, linestyle="--", label="memory floor")
        ax.set_ylabel("time / memory-bandwidth floor (lower is better)")
        ax.set_title(f"SE layer {tuple(result['config']['shape'])} {result['dtype']}")
        ax.tick_params(axis="x", labelrotation=15)
        ax.legend()
    else:
        roles = ("se-zoo", "timm", "plain")
        width = 0.8 / len(roles)
        for i, role in enumerate(roles):
            values = [next(c["ratio"] for c in r["candidates"] if c["role"] == role) for r in result["results"]]
            ax.bar([j + (i - 1) * width for j in range(len(values))], values, width, label=role)
        ax.set_xticks(range(len(result["results"])), [r["model"] for r in result["results"]])
        ax.axhline(1.0, color="black", linewidth=1, linestyle="--")
        ax.set_ylabel("throughput relative to timm (higher is better)")
        ax.set_title("se-zoo vs timm vs plain")
        ax.legend()
    if result["mode"] != "imports":
        fig.text(0.01, 0.01, _describe(result["config"]) + f" | {result['machine']['device']}", fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _shape_arg(text: str) -> Tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N,C,H,W integers, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``se-zoo bench`` arguments to ``parser``."""
    parser.add_argument("--model", action="append", metavar="NAME",
                        help="se-zoo architecture to compare with timm and the plain model; repeatable "
                             "(default: se_zoo_resnet50)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--layer", action="store_true", help="benchmark the SE layer alone against the memory floor")
    mode.add_argument("--imports", action="store_true", help="time `import se_zoo` against `import timm`")
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
    parser.add_argument("--amp", choices=tuple(_AMP_DTYPES), help="autocast dtype (layer mode: the layer's dtype)")
    parser.add_argument("--iters", type=int, default=5, help="steps per timed sample (default: 5)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per candidate first (default: 3)")
    parser.add_argument("--repeats", type=int, default=7, help="timed samples (rounds) per candidate (default: 7)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory measurement")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    parser.add_argument("--plot", metavar="FILE.png", help="also save a bar chart (needs matplotlib)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress messages on stderr")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark ``args`` describe and print it; returns the exit status."""
    cfg = BenchConfig(
        batch_size=args.batch_size, img_size=args.img_size, channels_last=args.channels_last,
        compile=args.compile, train=args.train, device=args.device, amp=args.amp, iters=args.iters,
        warmup=args.warmup, repeats=args.repeats, threads=args.threads, memory=args.memory)

    def log(msg: str) -> None:
        if not args.quiet:
            print(f"[bench] {msg}", file=sys.stderr, flush=True)

    if (args.layer or args.imports) and args.model:
        raise ValueError(f"--model applies to model mode only, got {args.model} with --{'layer' if args.layer else 'imports'}")
    if args.imports:
        result = bench_imports(args.repeats, log)
    elif args.layer:
        result = bench_layer(cfg, args.layer_shape, log)
    else:
        result = bench_models(args.model or ["se_zoo_resnet50"], cfg, log)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    if args.plot:
        save_plot(result, args.plot)
        log(f"plot saved to {args.plot}")
    return 0
