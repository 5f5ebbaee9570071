"""Download throughput through a pull-through mirror, against downloading from the upstream directly.

Usage::

    python scripts/bench_mirror.py [--mib 100] [--clients 8]

Two registries on loopback: an upstream holding one file of ``--mib`` random MiB, and a mirror
(``--upstream``) in front of it. Prints the wall time and MiB/s of ``--clients`` concurrent
downloads (1) from the upstream, (2) cold through the mirror (one upstream transfer shared by all
clients) and (3) warm from the mirror's store, and the ratios to (1). Torch-free.
"""
import argparse
import hashlib
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
from huggingface_hub import HfApi, constants

from se_zoo.registry.app import HubServer
from se_zoo.registry.mirror.upstream import Upstream

TOKEN = "bench-write-token"


def _download_all(url: str, clients: int, expected: str) -> float:
    def one(_: int) -> None:
        digest = hashlib.sha256()
        with httpx2.Client(timeout=600) as client, client.stream("GET", url) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes(1 << 20):
                digest.update(chunk)
        if digest.hexdigest() != expected:
            raise RuntimeError(f"{url}: wrong bytes")

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(clients)))
    return time.perf_counter() - start


def main() -> None:
    """Run the three measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=100, help="file size in MiB (default 100)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent downloads (default 8)")
    args = parser.parse_args()
    constants.HF_HUB_DISABLE_XET = True  # the registry takes plain LFS uploads
    with tempfile.TemporaryDirectory() as tmp:
        data = os.urandom(args.mib << 20)
        expected = hashlib.sha256(data).hexdigest()
        with HubServer(Path(tmp) / "up", {TOKEN: "write"}).start() as upstream, \
                HubServer(Path(tmp) / "mirror", upstream=Upstream(upstream.endpoint)).start() as mirror:
            api = HfApi(endpoint=upstream.endpoint, token=TOKEN)
            api.create_repo("bench/file")
            commit = api.upload_file(path_or_fileobj=data, path_in_repo="f.bin", repo_id="bench/file").oid
            total = args.mib * args.clients
            rows = []
            for label, endpoint in (("upstream directly", upstream.endpoint), ("mirror, cold", mirror.endpoint),
                                    ("mirror, warm", mirror.endpoint)):
                seconds = _download_all(f"{endpoint}/bench/file/resolve/{commit}/f.bin", args.clients, expected)
                rows.append((label, seconds))
            print(f"{args.clients} concurrent downloads of {args.mib} MiB; "
                  f"upstream transfers through the mirror: {mirror.registry.mirror.flights.started}")
            for label, seconds in rows:
                print(f"{label:18s} {seconds:7.2f} s  {total / seconds:8.1f} MiB/s  "
                      f"ratio to direct {rows[0][1] / seconds:5.2f}")


if __name__ == "__main__":
    main()
