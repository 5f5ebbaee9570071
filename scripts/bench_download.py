"""Download throughput of the registry against nginx on the same 1 GiB file, side by side.

Usage::

    python scripts/bench_download.py [--mib 1024] [--rounds 5] [--clients 8] [--workers 1] [--registry-args "..."]
                                     [--baseline CHECKOUT]

Stores one LFS file of ``--mib`` random MiB in a fresh root and serves it three ways at once:

- ``registry``: ``python -m se_zoo.registry serve`` alone (``--workers``, ``--registry-args``);
- ``nginx``: Debian's nginx serving the blob as a static file (``sendfile on``), the reference;
- ``behind``: the same nginx in front of a second registry started with ``--accel-redirect``: the
  registry checks the request and the blob, nginx sends the bytes;
- ``baseline`` (with ``--baseline``): the registry alone again, from another checkout of the project
  (e.g. ``git worktree add /tmp/base main``), to compare a change in the same run.

Each round fetches the file from each of the three in turn (the order rotates every round), first with
one ``curl -o /dev/null`` and then with ``--clients`` concurrent ones (aggregate MiB/s: all bytes over
the wall time of the slowest). A warm-up download of each comes first, so the page cache holds the
file and the registries have verified the blob (the fast path every later download takes). Prints
the median MiB/s of each, the ratios registry/nginx and behind/nginx, and the load average before and
after. Linux, needs ``curl`` and ``nginx`` on the PATH (or ``/usr/sbin``); torch-free.
"""
import argparse
import os
import pwd
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _registry_process import add_big_file, serve_registry  # scripts/ is on sys.path when a script runs

MiB = 1024 * 1024
REPO = Path(__file__).resolve().parents[1]
ACCEL_PREFIX = "/_se_zoo_blobs/"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _nginx_config(work: Path, root: Path, static_port: int, proxy_port: int, upstream: str) -> Path:
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""  # workers read the root
    temp = "".join(f"    {kind}_temp_path {work / kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    config = work / "nginx.conf"
    config.write_text(f"""{user}
worker_processes auto;
pid {work / 'nginx.pid'};
error_log {work / 'error.log'} warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
{temp}
    server {{
        listen 127.0.0.1:{static_port};
        root {root};
    }}
    server {{
        listen 127.0.0.1:{proxy_port};
        client_max_body_size 0;
        location {ACCEL_PREFIX} {{
            internal;
            alias {root / 'blobs'}/;
        }}
        location / {{
            proxy_pass {upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_request_buffering off;
            proxy_buffering off;
        }}
    }}
}}
""")
    return config


def _curl(url: str) -> float:
    """Seconds to download ``url`` to /dev/null (checked to be a complete 200)."""
    out = subprocess.run(["curl", "-sS", "-L", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}",
                          url], capture_output=True, text=True, check=True).stdout.split()
    if out[0] != "200":
        raise RuntimeError(f"{url} answered {out[0]}")
    return float(out[2]), int(out[1])


def _measure(url: str, clients: int, size: int) -> float:
    """Aggregate MiB/s of ``clients`` concurrent downloads of ``url``."""
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(_curl, [url] * clients))
    wall = time.perf_counter() - start
    if any(got != size for _, got in results):
        raise RuntimeError(f"{url}: incomplete download {[got for _, got in results]}")
    if clients == 1:
        wall = results[0][0]
    return clients * size / MiB / wall


def main() -> int:
    """Run the benchmark (see the module docstring); returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=1024, help="file size in MiB (default 1024)")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients of the second measure (default 8)")
    parser.add_argument("--workers", type=int, default=1, help="registry processes (default 1)")
    parser.add_argument("--registry-args", default="", help="more arguments for `serve`, e.g. '--workers 2'")
    parser.add_argument("--baseline", type=Path, help="another checkout whose registry joins the rotation")
    args = parser.parse_args()
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if nginx is None or shutil.which("curl") is None:
        print("needs nginx (apt-get install nginx) and curl", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    processes = []
    with tempfile.TemporaryDirectory(prefix="bench_download_") as tmp:
        work = Path(tmp)
        root = work / "root"
        commit, _ = add_big_file(root, args.mib)
        size = args.mib * MiB
        extra = ["--workers", str(args.workers), *shlex.split(args.registry_args)]
        try:
            alone, alone_url = serve_registry(root, work / "alone.log", extra, REPO)
            processes.append(alone)
            behind, behind_url = serve_registry(root, work / "behind.log", [*extra, "--accel-redirect", ACCEL_PREFIX],
                                                REPO)
            processes.append(behind)
            if args.baseline is not None:
                baseline, baseline_url = serve_registry(root, work / "baseline.log", extra, args.baseline.resolve())
                processes.append(baseline)
            static_port, proxy_port = _free_port(), _free_port()
            config = _nginx_config(work, root, static_port, proxy_port, behind_url)
            server = subprocess.Popen([nginx, "-c", str(config), "-p", str(work), "-e", str(work / "error.log"),
                                       "-g", "daemon off;"], stderr=subprocess.STDOUT,
                                      stdout=open(work / "nginx.out", "w"))
            processes.append(server)
            time.sleep(1.0)
            if server.poll() is not None:
                raise RuntimeError(f"nginx did not start:\n{(work / 'nginx.out').read_text()}"
                                   f"{(work / 'error.log').read_text() if (work / 'error.log').exists() else ''}")
            sha = _sha_of(root, commit)
            path = f"/bench/big/resolve/{commit}/big.bin"
            urls = {"registry": alone_url + path, "nginx": f"http://127.0.0.1:{static_port}/blobs/{sha[:2]}/{sha}",
                    "behind": f"http://127.0.0.1:{proxy_port}{path}"}
            if args.baseline is not None:
                urls["baseline"] = baseline_url + path
            for url in urls.values():  # warm-up: page cache, and each registry verifies the blob once
                _measure(url, 1, size)
            figures = {(name, clients): [] for name in urls for clients in (1, args.clients)}
            names = list(urls)
            for round_ in range(args.rounds):
                order = names[round_ % len(names):] + names[:round_ % len(names)]
                for clients in (1, args.clients):
                    for name in order:
                        figures[name, clients].append(_measure(urls[name], clients, size))
                print(f"round {round_ + 1}: " + ", ".join(f"{n}/{c}: {statistics.fmean(v[-1:]):.0f}"
                                                           for (n, c), v in figures.items()), flush=True)
        finally:
            for process in reversed(processes):
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
    load_after = os.getloadavg()
    print(f"\n{args.mib} MiB file, {args.rounds} rounds, registry workers {args.workers} {args.registry_args}".rstrip())
    print(f"{'clients':>8} {'registry':>10} {'nginx':>10} {'behind':>10} {'reg/nginx':>10} {'behind/nginx':>13}"
          "  (MiB/s medians)")
    for clients in (1, args.clients):
        med = {name: statistics.median(figures[name, clients]) for name in names}
        print(f"{clients:>8} {med['registry']:>10.0f} {med['nginx']:>10.0f} {med['behind']:>10.0f} "
              f"{med['registry'] / med['nginx']:>10.2f} {med['behind'] / med['nginx']:>13.2f}")
        ratios = [r / n for r, n in zip(figures["registry", clients], figures["nginx", clients])]
        behind_ratios = [b / n for b, n in zip(figures["behind", clients], figures["nginx", clients])]
        if args.baseline is not None:
            print(f"{'':>8} baseline {statistics.median(figures['baseline', clients]):.0f} MiB/s, "
                  f"{statistics.median(figures['baseline', clients]) / med['nginx']:.2f}x nginx")
        print(f"{'':>8} per-round registry/nginx {min(ratios):.2f}-{max(ratios):.2f}, "
              f"behind/nginx {min(behind_ratios):.2f}-{max(behind_ratios):.2f}")
    print(f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; {os.cpu_count()} CPUs")
    return 0


def _sha_of(root: Path, commit: str) -> str:
    from se_zoo.registry.store.storage import Store

    store = Store(root)
    try:
        return store.commit_info("bench", "big", commit)["files"]["big.bin"]["sha256"]
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
