"""Peak memory of one step: the CUDA allocator's high-water mark, or on CPU a fresh process's resident set.

On CPU each candidate runs in its own process, with glibc told to map every
allocation of 64 KiB or more on its own, so freed tensors leave the resident
set at once and the high-water mark of one step is the step's own peak (Linux).
"""
import dataclasses
import gc
import json
import os
import platform
import re
import subprocess
import sys
from typing import Callable

from .candidates import Candidate, _build
from .config import BenchConfig
from .timing import _inputs, _make_step

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


def probe_main() -> None:
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
        [sys.executable, "-c", "from se_zoo.bench.memory import probe_main; probe_main()", payload],
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


