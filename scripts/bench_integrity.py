"""What serving only intact blobs costs a download: curl against this tree and an older revision.

Usage::

    python scripts/bench_integrity.py [--mib 512] [--rounds 5] [--before REV]

Stores one LFS file of ``--mib`` random MiB in a fresh root and starts two registries on it
(``python -m se_zoo.registry serve``): one running this tree, one running the ``--before`` revision
of the repository (exported with ``git archive``; by default the parent of the commit that added
the read-path check, ``se_zoo/registry/store/integrity.py``). Each round downloads the file with
``curl -o /dev/null``, in interleaved pairs (which one goes first alternates):

- ``before``: the older revision (no verification on the read path);
- ``verified``: this tree with a current verification record (the common path: no hashing);
- ``before touched``: the older revision, the blob's file touched (``os.utime``) just before;
- ``unverified``: this tree, the file touched just before, so the download hashes as it streams;
- ``range``: this tree, ``Range: bytes=0-1048575`` of a just-touched blob (the whole blob is
  hashed before the first byte: the figure is its time to answer).

``verified`` is compared with ``before`` and ``unverified`` with ``before touched``: a download
just after a touch was measured slower even by the older revision, so each pair shares its setup.
Prints the median MiB/s (time for ``range``) of each and the ratios to ``before``, with the load
average. Linux, needs ``curl`` and ``git``; torch-free.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _registry_process import add_big_file, serve_registry  # scripts/ is on sys.path when a script runs

TOKEN = "bench-integrity-token"
MiB = 1024 * 1024
REPO = Path(__file__).resolve().parents[1]


def _curl(url: str, byte_range: str = None) -> tuple:
    cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}", url]
    if byte_range:
        cmd[1:1] = ["-r", byte_range]
    status, size, seconds = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
    return int(status), int(size), float(seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=512, help="file size in MiB (default: 512)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default: 5)")
    parser.add_argument("--before", help="the revision to compare with (default: the last one without the check)")
    args = parser.parse_args()
    if args.before is None:
        added = subprocess.run(["git", "-C", str(REPO), "log", "--diff-filter=A", "--format=%H", "--",
                                "se_zoo/registry/store/integrity.py"], capture_output=True, text=True, check=True)
        if not added.stdout.split():
            parser.error("this checkout's history does not reach the commit that added the check: pass --before REV")
        args.before = added.stdout.split()[-1] + "~1"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        before = tmp / "before"
        before.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.before, "se_zoo"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
        _, blob = add_big_file(tmp / "root", args.mib)
        servers = {name: serve_registry(tmp / "root", tmp / f"{name}.log", ["--token", TOKEN], source)
                   for name, source in (("before", before), ("after", REPO))}
        try:
            url = {name: f"{endpoint}/bench/big/resolve/main/big.bin" for name, (_, endpoint) in servers.items()}
            for name in url:  # resolve the branch once; warm the page cache
                url[name] = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{redirect_url}", url[name]],
                                           capture_output=True, text=True, check=True).stdout
                _curl(url[name])
            load = os.getloadavg()[0]
            samples = {"before": [], "verified": [], "before touched": [], "unverified": [], "range": []}
            for round_index in range(args.rounds):  # pairs sharing their setup, each first in turn
                for pair in (("before", "verified"), ("before touched", "unverified"), ("range",)):
                    for kind in pair[::-1] if round_index % 2 else pair:
                        time.sleep(0.5)  # let the previous transfer's work settle
                        if kind in ("before touched", "unverified", "range"):
                            os.utime(blob)  # a changed file: its verification record is stale
                        status, size, seconds = _curl(url["before" if kind.startswith("before") else "after"],
                                                      "0-1048575" if kind == "range" else None)
                        expected = (206, MiB) if kind == "range" else (200, args.mib * MiB)
                        if (status, size) != expected:
                            raise RuntimeError(f"{kind}: answered {status} with {size} bytes, expected {expected}")
                        samples[kind].append(seconds if kind == "range" else size / MiB / seconds)
        finally:
            for process, _ in servers.values():
                process.kill()
        print(f"{args.mib} MiB, {args.rounds} rounds, load average {load:.2f} -> {os.getloadavg()[0]:.2f}")
        for kind, base in (("before", None), ("verified", "before"), ("before touched", None),
                           ("unverified", "before touched")):
            median = statistics.median(samples[kind])
            ratio = f"({median / statistics.median(samples[base]):.2f}x {base})" if base else ""
            print(f"{kind:>14}: {median:8.1f} MiB/s {ratio:<25} samples {', '.join(f'{s:.0f}' for s in samples[kind])}")
        print(f"{'range':>14}: {statistics.median(samples['range']):8.3f} s to answer a 1 MiB range of a stale blob")
    return 0


if __name__ == "__main__":
    sys.exit(main())
