"""The two benchmark modes: whole models (:func:`bench_models`) and the SE layer alone (:func:`bench_layer`)."""
import gc
import os
import statistics
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..errors import InvalidArgument
from .candidates import Candidate, _build, _copy_weights, _randomize_norms, model_candidates
from .config import AMP_DTYPES, BenchConfig
from .memory import _cpu_memory_supported, _cpu_peak_memory, _cuda_peak_step_mib
from .timing import _autocast, _config_dict, _inputs, _machine, _make_step, _paired_ratio, _prepare, _round_robin

if TYPE_CHECKING:
    import torch

DEFAULT_LAYER_SHAPE = (32, 256, 56, 56)


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
        peaks, notes = _peak_memory(candidates, steps, cfg, log)
        out["results"].append(_model_entry(name, candidates, samples, peaks, notes + _notes(name, candidates),
                                           rel_diff, cfg))
        del steps, built
        gc.collect()
    _end_load(out)
    return out


def _end_load(result: Dict[str, Any]) -> None:
    if hasattr(os, "getloadavg"):
        result["machine"]["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]


def _peak_memory(candidates: Sequence[Candidate], steps: Dict[str, Callable[[], None]], cfg: BenchConfig,
                 log: Callable[[str], None]) -> Tuple[Dict[str, Optional[float]], List[str]]:
    """Each candidate's peak memory of one step in MiB (None where not measured), and notes."""
    if cfg.memory and cfg.device == "cuda":
        return {label: _cuda_peak_step_mib(step) for label, step in steps.items()}, []
    peaks: Dict[str, Optional[float]] = {c.label: None for c in candidates}
    if cfg.memory and _cpu_memory_supported():
        for c in candidates:
            log(f"memory probe: {c.label}")
            peaks[c.label] = _cpu_peak_memory(c, cfg)
    elif cfg.memory:
        return peaks, ["peak memory on CPU needs Linux with glibc; not measured"]
    return peaks, []


def _notes(name: str, candidates: Sequence[Candidate]) -> List[str]:
    notes = []
    if candidates[1].se == "timm":
        notes.append(f"timm has {name}'s architecture without SE only: its counterpart is "
                     f"{name} with timm's EfficientNet SqueezeExcite in place of se-zoo's")
    if candidates[2].se == "none":
        notes.append(f"timm registers no plain twin of {name}: the plain model is "
                     f"{candidates[1].label} with its SE layers replaced by identities")
    return notes


def _model_entry(name: str, candidates: Sequence[Candidate], samples: Dict[str, List[float]],
                 peaks: Dict[str, Optional[float]], notes: List[str], rel_diff: float,
                 cfg: BenchConfig) -> Dict[str, Any]:
    """One model's result: per-candidate latency, throughput, memory and ratios to timm."""
    base, plain = samples[candidates[1].label], samples[candidates[2].label]
    return {
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
    }


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
        raise InvalidArgument(f"shape must be 4 positive integers (N, C, H, W), got {tuple(shape)!r}")
    return tuple(shape)


def bench_layer(cfg: BenchConfig, shape: Sequence[int] = DEFAULT_LAYER_SHAPE,
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
    shape = _check_shape(shape)
    if cfg.train:
        raise InvalidArgument("train must be False in layer mode: the layer benchmark times inference")
    _prepare(cfg)
    machine = _machine(cfg)
    steps, diff, nbytes, dtype = _layer_steps(cfg, shape)
    samples = _round_robin(steps, cfg, log)
    copy = samples["copy"]
    result: Dict[str, Any] = {
        "mode": "layer", "config": _config_dict(cfg, shape=list(shape)), "machine": machine,
        "dtype": dtype, "bytes": nbytes, "bandwidth_gb_s": 2 * nbytes / statistics.median(copy) / 1e9,
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
    _end_load(result)
    return result


def _layer_steps(cfg: BenchConfig, shape: Sequence[int]) -> Tuple[Dict[str, Callable[[], None]], Dict[str, float],
                                                                  int, str]:
    """The steps of :data:`_LAYER_OPS` by label, se-zoo's max |diff| to timm, the input's bytes and dtype."""
    import torch
    from timm.layers import SEModule
    from torch import nn

    from ..layers import SqueezeExcite

    dd = {"device": cfg.device, "dtype": getattr(torch, AMP_DTYPES[cfg.amp]) if cfg.amp else torch.float32}
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen).to(**dd).contiguous(memory_format=fmt)
    shortcut = torch.randn(shape, generator=gen).to(**dd).contiguous(memory_format=fmt)
    x_fused, out = x.clone(), torch.empty_like(x)
    reference, ours = SEModule(shape[1], **dd).eval(), SqueezeExcite(shape[1], **dd).eval()
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

    steps = {label: in_inference(fn) for (label, _, _), fn in zip(_LAYER_OPS, fns)}
    return steps, diff, x.numel() * x.element_size(), str(dd["dtype"]).replace("torch.", "")
