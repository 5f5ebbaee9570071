"""Time ``se-zoo hub serve`` and ``se-zoo-hub serve`` from process start to their first answered request.

Usage::

    python scripts/bench_startup.py [--runs 9] [--against OTHER_CHECKOUT]

Each run starts a fresh interpreter on an empty registry root with ``--port 0``, reads the URL the
server prints once it listens, and sends ``GET /api/models`` until it is answered; the time from
``Popen`` to that answer is the start-up time. The two commands alternate run by run (after one
untimed warm-up run each, which fills the file cache), so a change of machine load hits both.
``se-zoo hub serve`` runs as ``python -m se_zoo.cli hub serve``, ``se-zoo-hub serve`` as
``python -m se_zoo.registry serve`` (what the console scripts call). Also checked: ``se-zoo-hub
serve`` never imports torch (the modules the warm-up run imported, read through ``-X importtime``).

Prints per command the median, min and max in seconds, the median CPU time of the server process,
and the load average before and after. ``--against DIR`` times the same commands with another
checkout of se-zoo first on ``PYTHONPATH``, interleaved, and prints this checkout's time as a ratio
to that one's (median of per-run ratios, so the load of the moment cancels out).
Timings on a shared machine are noisy: read the medians together with the load.
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional, Tuple

COMMANDS = {
    "se-zoo hub serve": [sys.executable, "-m", "se_zoo.cli", "hub", "serve"],
    "se-zoo-hub serve": [sys.executable, "-m", "se_zoo.registry", "serve"],
}


def time_start(command: List[str], root: Path, timeout: float = 60.0, trace_imports: bool = False,
               env: Optional[Dict[str, str]] = None) -> Tuple[float, float, List[str]]:
    """Seconds from starting ``command --root root --port 0`` to its first answered ``GET /api/models``.

    Args:
        command: The server command line, without ``--root``/``--port``.
        root: An empty directory for the registry.
        timeout: Seconds to wait for the answer.
        trace_imports: Run with ``-X importtime`` (slower: for the untimed warm-up run).
        env: Variables to set for the server on top of this process's environment.

    Returns:
        ``(seconds, cpu_seconds, modules)``: the start-up time, the CPU time (user + system) the server
        process used in its life (it is idle after that first answer; less sensitive to the machine's
        load than the wall time) and, with ``trace_imports``, the top-level modules it imported.

    Raises:
        RuntimeError: if the server exits or does not answer within ``timeout``.
    """
    env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1",
           **({"PYTHONPROFILEIMPORTTIME": "1"} if trace_imports else {})}
    env.pop("SE_ZOO_HUB_TOKEN", None)
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen([*command, "--root", str(root), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=root.parent)  # `-m` puts the cwd first
    try:
        endpoint = proc.stdout.readline().strip()
        if not endpoint.startswith("http"):
            raise RuntimeError(f"{' '.join(command)} printed {endpoint!r} instead of its URL: "
                               f"{proc.stderr.read()[-2000:]}")
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/api/models", timeout=timeout) as response:
                    response.read()
                    break
            except OSError:
                if time.perf_counter() - start > timeout:
                    raise RuntimeError(f"{' '.join(command)} did not answer within {timeout} s.") from None
                time.sleep(0.005)
        elapsed = time.perf_counter() - start
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    modules = sorted({line.split("|")[-1].strip().split(".")[0] for line in stderr.splitlines()
                      if line.startswith("import time:") and "|" in line})
    return elapsed, cpu, modules


def main() -> int:
    """Run the benchmark (see the module docstring); returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="timed runs per command (default: 9)")
    parser.add_argument("--against", type=Path, metavar="CHECKOUT",
                        help="also time the same commands with another checkout first on PYTHONPATH (e.g. a "
                             "`git worktree` of an older commit), interleaved, and print the ratios")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error(f"--runs must be >= 1, got {args.runs}")
    here = str(Path(__file__).resolve().parents[1])
    trees = {"": here, **({" (against)": str(args.against.resolve())} if args.against else {})}
    variants = [(f"{name}{suffix}", command, tree) for name, command in COMMANDS.items()
                for suffix, tree in trees.items()]
    load_before = os.getloadavg()
    samples: Dict[str, List[float]] = {name: [] for name, _, _ in variants}
    cpu: Dict[str, List[float]] = {name: [] for name, _, _ in variants}
    imported: Dict[str, List[str]] = {}
    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        for run in range(args.runs + 1):
            for number, (name, command, tree) in enumerate(variants):
                env = {"PYTHONPATH": os.pathsep.join([tree, os.environ.get("PYTHONPATH", "")])}
                elapsed, cpu_seconds, modules = time_start(command, work / f"root-{run}-{number}",
                                                           trace_imports=not run, env=env)
                if not run:
                    imported[name] = modules
                else:
                    samples[name].append(elapsed)
                    cpu[name].append(cpu_seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    print(f"{sys.executable} on {os.cpu_count()} CPUs; {args.runs} runs per command, interleaved")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}; "
          f"after: {' '.join(f'{x:.2f}' for x in load_after)}")
    for name, values in samples.items():
        print(f"{name:29s} start to first answer: median {statistics.median(values):.3f} s "
              f"(min {min(values):.3f}, max {max(values):.3f}); CPU time median {statistics.median(cpu[name]):.3f} s")
    if args.against:
        for name in COMMANDS:
            new, old = samples[name], samples[f"{name} (against)"]
            print(f"{name:29s} this checkout : against, median of per-run ratios: wall "
                  f"{statistics.median(a / b for a, b in zip(new, old)):.2f}, CPU "
                  f"{statistics.median(a / b for a, b in zip(cpu[name], cpu[f'{name} (against)'])):.2f}")
    heavy = {name: [m for m in mods if m in ("torch", "timm", "numpy", "safetensors")]
             for name, mods in imported.items()}
    for name, mods in heavy.items():
        print(f"{name:29s} imports of the model side: {', '.join(mods) or 'none'}")
    return 1 if heavy["se-zoo-hub serve"] else 0


if __name__ == "__main__":
    sys.exit(main())
