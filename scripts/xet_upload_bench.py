"""Time the upload of a checkpoint to a local registry through Xet and through plain LFS, same run.

Usage::

    python scripts/xet_upload_bench.py [--mib 200] [--repeats 2]

Writes a float32 safetensors checkpoint of about ``--mib`` MiB and uploads it with the unmodified
client to ``se-zoo hub serve`` (a subprocess), each upload to a fresh registry root from a fresh
client process and cache: with ``HF_HUB_DISABLE_XET=1`` (plain LFS) and with the defaults (Xet),
alternating, ``--repeats`` times each. It then uploads a second checkpoint that differs in one
tensor (5% of the bytes) through Xet, where dedup applies. Prints the median of each and the ratio.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOKEN = "bench-write-token"
UPLOAD = ("import sys; from huggingface_hub import HfApi; api = HfApi(); api.create_repo(sys.argv[2], exist_ok=True); "
          "api.upload_file(path_or_fileobj=sys.argv[1], path_in_repo='model.safetensors', repo_id=sys.argv[2])")


def _serve(root: Path) -> tuple:
    log = root.parent / f"{root.name}.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "se_zoo.cli", "hub", "serve", "--root", str(root),
                                    "--token", TOKEN], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        lines = [line for line in log.read_text().splitlines() if line.startswith("http://")]
        if lines:
            return process, lines[0]
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the registry did not start:\n{log.read_text()}")


def _upload(endpoint: str, path: Path, repo_id: str, home: Path, xet: bool) -> float:
    env = dict(os.environ, HF_ENDPOINT=endpoint, HF_TOKEN=TOKEN, HF_HOME=str(home), HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1")
    env.pop("HF_XET_CACHE", None)
    if xet:
        env.pop("HF_HUB_DISABLE_XET", None)
    else:
        env["HF_HUB_DISABLE_XET"] = "1"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", UPLOAD, str(path), repo_id], env=env, check=True)
    return time.perf_counter() - start


def _checkpoints(workdir: Path, mib: int) -> tuple:
    import safetensors.torch
    import torch

    gen = torch.Generator().manual_seed(0)
    n_tensors = 20
    state = {f"layer{i}.weight": torch.randn(mib * 1024 * 1024 // 4 // n_tensors, generator=gen)
             for i in range(n_tensors)}
    first, second = workdir / "v1.safetensors", workdir / "v2.safetensors"
    safetensors.torch.save_file(state, str(first))
    state["layer10.weight"] = torch.randn(state["layer10.weight"].shape, generator=gen)
    safetensors.torch.save_file(state, str(second))
    return first, second


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=200, help="checkpoint size in MiB (default 200)")
    parser.add_argument("--repeats", type=int, default=2, help="uploads per protocol (default 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        first, second = _checkpoints(workdir, args.mib)
        times = {"lfs": [], "xet": []}
        for i in range(args.repeats):
            for kind in ("lfs", "xet"):  # each upload to a fresh registry: nothing to deduplicate against
                process, endpoint = _serve(workdir / f"root-{kind}{i}")
                try:
                    times[kind].append(_upload(endpoint, first, "bench/ckpt", workdir / f"home-{kind}{i}",
                                               xet=kind == "xet"))
                finally:
                    process.kill()
                    process.wait()
        process, endpoint = _serve(workdir / "root-dedup")
        try:
            _upload(endpoint, first, "bench/ckpt", workdir / "home-dedup1", xet=True)
            dedup = _upload(endpoint, second, "bench/ckpt", workdir / "home-dedup2", xet=True)
        finally:
            process.kill()
            process.wait()
        size = first.stat().st_size / 1024 / 1024
        lfs, xet = statistics.median(times["lfs"]), statistics.median(times["xet"])
        print(f"checkpoint: {size:.0f} MiB, {args.repeats} upload(s) each, fresh client process and cache")
        print(f"plain LFS : {lfs:6.2f} s  ({size / lfs:6.1f} MiB/s)  runs: {[round(t, 2) for t in times['lfs']]}")
        print(f"Xet       : {xet:6.2f} s  ({size / xet:6.1f} MiB/s)  runs: {[round(t, 2) for t in times['xet']]}")
        print(f"Xet / LFS : {xet / lfs:.2f}x the time")
        print(f"Xet, second checkpoint (one tensor of 20 changed): {dedup:.2f} s ({dedup / lfs:.2f}x plain LFS)")


if __name__ == "__main__":
    main()
