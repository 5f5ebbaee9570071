"""Benchmark results as a text table (:func:`format_table`) or a bar chart (:func:`save_plot`)."""
from typing import Any, Dict, Optional



def _describe(cfg: Dict[str, Any]) -> str:
    parts = [cfg["device"], cfg["amp"] or "fp32"]
    if "shape" not in cfg:
        parts += [f"batch {cfg['batch_size']}", f"{cfg['img_size']}px"]
    parts += ["channels_last" if cfg["channels_last"] else "contiguous",
              "compiled" if cfg["compile"] else "eager", "training step" if cfg["train"] else "inference",
              f"{cfg['repeats']} rounds x {cfg['iters']} steps"]
    return ", ".join(parts)


def _fmt(value: Optional[float], spec: str) -> str:
    """``value`` formatted with ``spec``; a missing value is "-" in the same column width."""
    return format("-", spec.split(".")[0]) if value is None else format(value, spec)


def format_table(result: Dict[str, Any]) -> str:
    """Render a :func:`bench_models`, :func:`bench_layer` or ``scripts/bench_imports.py`` result as a table.

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
        lines.append(f"{r['model']}: logits vs {r['baseline']}: max |diff| / max |logit| "
                     f"{r['logits_max_rel_diff']:.1e}; "
                     f"SE overhead over plain: se-zoo {r['se_overhead']['se-zoo']:+.1%}, "
                     f"timm {r['se_overhead']['timm']:+.1%}")
        lines.append(f"{'candidate':<34} {'role':<7} {'img/s':>9} {'ms/step':>9} {'peak MiB':>9} {'vs timm':>8}")
        for c in r["candidates"]:
            lines.append(f"{c['label']:<34} {c['role']:<7} {c['images_per_s']:>9.1f} {c['latency_ms']:>9.1f} "
                         f"{_fmt(c['peak_mem_mib'], '>9.0f')} {c['ratio']:>8.3f}")
        lines.extend(f"note: {note}" for note in r["notes"])
    return "\n".join(lines)


def require_matplotlib() -> None:
    """Check that :func:`save_plot` can run, before a benchmark spends minutes.

    Raises:
        ModuleNotFoundError: if matplotlib is not installed (``pip install se-zoo[plot]``).
    """
    try:
        import matplotlib  # noqa: F401
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError("--plot needs matplotlib: pip install 'se-zoo[plot]'", name="matplotlib") from exc


def save_plot(result: Dict[str, Any], path: str) -> None:
    """Save a bar chart of a benchmark result as an image.

    Model mode plots each candidate's throughput relative to timm; layer mode
    plots each candidate's time in multiples of its memory-bandwidth floor.

    Args:
        result: The dict :func:`bench_models` or :func:`bench_layer` returned.
        path: Output file; the format follows the extension (``.png``, ``.svg``, ...).

    Raises:
        ModuleNotFoundError: if matplotlib is not installed (``pip install se-zoo[plot]``).
    """
    require_matplotlib()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


