"""Load and fault figures for the registry: start time, memory, latency under load, throughput.

Starts ``python -m se_zoo.registry serve`` on loopback with a fresh root and prints:

- start to first answered request, and idle RSS of the server process;
- p50/p99 latency of ``GET /api/models/{id}`` when idle, during a large LFS upload, and while
  unauthenticated clients send the worst request of each endpoint (paths-info with the most
  paths on a 2,000-file repo, validate-yaml at its cap, recursive tree, listings, header and
  number bombs) - with the status codes those got (no 5xx expected);
- download throughput of the large file, against ``python -m http.server`` serving the same file
  in the same run, as a ratio;
- the server's peak RSS.

Usage::

    python scripts/registry_load.py [--size-mb 200] [--downloads 4] [--adversaries 4] [--seconds 10]

Linux only (reads /proc for memory).
"""
import argparse
import base64
import hashlib
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Tuple
from urllib.parse import urlsplit

TOKEN = "load-test-write-token"
MiB = 1024 * 1024


class Client:
    """Raw HTTP/1.1 requests to one host, one connection per call (or kept by the caller)."""

    def __init__(self, endpoint: str):
        url = urlsplit(endpoint)
        self.host, self.port = url.hostname, url.port

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=300)

    def request(self, method: str, path: str, body: bytes = None, headers: Dict[str, str] = None,
                conn: http.client.HTTPConnection = None) -> Tuple[int, bytes]:
        own = conn is None
        conn = conn or self.connect()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            if own:
                conn.close()


def _auth() -> Dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def _rss_mib(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(root: Path) -> Tuple[subprocess.Popen, str, float]:
    """Start the registry; returns the process, its endpoint and seconds until it answered."""
    log = root.parent / "server.log"
    started = time.perf_counter()
    out = open(log, "w")
    env = {**os.environ, "SE_ZOO_HUB_TOKEN": TOKEN}
    process = subprocess.Popen([sys.executable, "-m", "se_zoo.registry", "serve", "--root", str(root)],
                               stdout=out, stderr=subprocess.STDOUT, env=env)
    while True:
        lines = log.read_text().split("\n")[:-1]
        endpoint = next((x for x in lines if x.startswith("http://")), None)
        if endpoint:
            try:
                if Client(endpoint).request("GET", "/api/models")[0] == 200:
                    return process, endpoint, time.perf_counter() - started
            except OSError:
                pass
        if process.poll() is not None:
            raise RuntimeError(f"the registry did not start:\n{log.read_text()}")
        time.sleep(0.01)


def commit(client: Client, repo: str, lines: List[dict]) -> None:
    body = "\n".join(json.dumps(x) for x in [{"key": "header", "value": {"summary": "load"}}, *lines]).encode()
    status, text = client.request("POST", f"/api/models/{repo}/commit/main", body,
                                  {**_auth(), "Content-Type": "application/x-ndjson"})
    assert status == 200, text


def make_repos(client: Client) -> None:
    for name in ("model", "wide"):
        status, text = client.request("POST", "/api/repos/create", json.dumps(
            {"organization": "load", "name": name}).encode(), {**_auth(), "Content-Type": "application/json"})
        assert status == 200, text
    files = [{"key": "file", "value": {"path": f"d{i % 40}/s{i % 7}/f{i}.txt",
                                       "content": base64.b64encode(b"x%d" % i).decode()}} for i in range(2000)]
    commit(client, "load/wide", files)


def big_file(size_mb: int, directory: Path) -> Tuple[Path, str]:
    path, digest = directory / "big.bin", hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(size_mb):
            chunk = os.urandom(MiB)
            digest.update(chunk)
            f.write(chunk)
    return path, digest.hexdigest()


def upload(client: Client, path: Path, sha: str) -> float:
    """LFS-upload ``path`` to load/model and commit it; returns MB/s of the PUT."""
    size = path.stat().st_size
    batch = {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": sha, "size": size}]}
    status, text = client.request("POST", "/load/model.git/info/lfs/objects/batch", json.dumps(batch).encode(),
                                  {**_auth(), "Content-Type": "application/json"})
    href = urlsplit(json.loads(text)["objects"][0]["actions"]["upload"]["href"])
    conn = client.connect()
    started = time.perf_counter()
    conn.putrequest("PUT", f"{href.path}?{href.query}")
    conn.putheader("Content-Length", str(size))
    conn.endheaders()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            conn.send(chunk)
    response = conn.getresponse()
    response.read()
    assert response.status == 200, response.status
    seconds = time.perf_counter() - started
    commit(client, "load/model", [{"key": "lfsFile", "value": {"path": "model.safetensors", "algo": "sha256",
                                                               "oid": sha, "size": size}}])
    return size / MiB / seconds


def probe(client: Client, stop: threading.Event, latencies: List[float]) -> None:
    """GET /api/models/load/model in a loop on one kept connection, recording latencies."""
    conn = client.connect()
    while not stop.is_set():
        started = time.perf_counter()
        status, _ = client.request("GET", "/api/models/load/model", conn=conn)
        latencies.append(time.perf_counter() - started)
        assert status == 200, status
        time.sleep(0.005)


def measure_during(client: Client, work: Callable[[], object], seconds: float = None) -> Tuple[object, List[float]]:
    """Run ``work`` (or sleep ``seconds``) while probing; returns its result and the latencies."""
    stop, latencies = threading.Event(), []
    thread = threading.Thread(target=probe, args=(client, stop, latencies))
    thread.start()
    try:
        result = work() if work is not None else time.sleep(seconds)
    finally:
        stop.set()
        thread.join()
    return result, latencies


def adversarial_requests() -> List[Tuple[str, str, bytes, Dict[str, str]]]:
    """The worst request of each endpoint an unauthenticated client can send (none needs a token)."""
    paths = json.dumps({"paths": [f"d{i % 40}/s{i % 7}/f{i}.txt" for i in range(1000)]}).encode()  # the cap
    too_many = json.dumps({"paths": [f"p{i}" for i in range(60_000)]}).encode()
    yaml_doc = "---\n" + "".join(f"key{i}: [a, b, {{c: d}}]\n" for i in range(9_000)) + "---\n"
    json_headers = {"Content-Type": "application/json"}
    return [
        ("POST", "/api/models/load/wide/paths-info/main", paths, json_headers),
        ("POST", "/api/models/load/wide/paths-info/main", too_many, json_headers),
        ("POST", "/api/validate-yaml", json.dumps({"content": yaml_doc[: 250 * 1024] + "\n---\n"}).encode(),
         json_headers),
        ("POST", "/api/validate-yaml", json.dumps({"content": "x" * (4 * MiB)}).encode(), json_headers),
        ("GET", "/api/models/load/wide/tree/main?recursive=1", None, {}),
        ("GET", "/api/models?full=1", None, {}),
        ("GET", "/api/models?limit=" + "9" * 5000, None, {}),
        ("GET", "/load/wide/resolve/main/d0/s0/f0.txt", None, {"Range": "bytes=0-" + "9" * 5000}),
        ("GET", "/api/models", None, {f"X-H{i}": "v" for i in range(150)}),
        ("GET", "/api/models", None, {"X-Big": "a" * 60_000}),
    ]


def adversaries(client: Client, count: int, seconds: float, statuses: Dict[int, int]) -> int:
    """``count`` threads send the adversarial requests in turn for ``seconds``; returns how many."""
    requests = adversarial_requests()
    deadline = time.monotonic() + seconds
    sent = [0]
    lock = threading.Lock()

    def run(offset: int) -> None:
        i = offset
        while time.monotonic() < deadline:
            method, path, body, headers = requests[i % len(requests)]
            try:
                status, _ = client.request(method, path, body, headers)
            except (OSError, http.client.HTTPException):
                status = -1  # the server closed the connection (h11 refusing an oversized head)
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                sent[0] += 1
            i += 1

    with ThreadPoolExecutor(count) as pool:
        list(pool.map(run, range(count)))
    return sent[0]


def download_rate(client: Client, path: str, count: int, size: int) -> float:
    """MB/s of ``count`` concurrent full GETs of ``path`` (bytes read and discarded)."""

    def fetch(_: int) -> int:
        conn = client.connect()
        conn.request("GET", path)
        response = conn.getresponse()
        got = 0
        while chunk := response.read(MiB):
            got += len(chunk)
        conn.close()
        assert response.status == 200 and got == size, (response.status, got)
        return got

    started = time.perf_counter()
    with ThreadPoolExecutor(count) as pool:
        total = sum(pool.map(fetch, range(count)))
    return total / MiB / (time.perf_counter() - started)


def http_server_rate(directory: Path, name: str, count: int, size: int) -> float:
    """The same download through ``python -m http.server`` serving ``directory``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                "--directory", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = Client(f"http://127.0.0.1:{port}")
        while True:
            try:
                client.request("HEAD", "/" + name)
                break
            except OSError:
                time.sleep(0.05)
        return download_rate(client, "/" + name, count, size)
    finally:
        process.kill()
        process.wait()


def _pct(values: List[float]) -> str:
    if len(values) < 2:
        return "n/a"
    cuts = statistics.quantiles(values, n=100)
    return f"p50 {cuts[49] * 1000:7.1f} ms   p99 {cuts[98] * 1000:7.1f} ms   ({len(values)} requests)"


def main() -> int:
    """Run every phase and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=200, help="size of the uploaded/downloaded file")
    parser.add_argument("--downloads", type=int, default=4, help="concurrent downloads")
    parser.add_argument("--adversaries", type=int, default=4, help="concurrent adversarial clients")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of the adversarial phase")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="registry-load-") as tmp:
        tmp = Path(tmp)
        process, endpoint, start_s = start_server(tmp / "root")
        try:
            client = Client(endpoint)
            time.sleep(0.5)
            idle_rss = _rss_mib(process.pid)
            make_repos(client)
            _, idle = measure_during(client, None, seconds=3.0)
            path, sha = big_file(args.size_mb, tmp)
            upload_rate, during_upload = measure_during(client, lambda: upload(client, path, sha))
            statuses: Dict[int, int] = {}
            sent, during_attack = measure_during(
                client, lambda: adversaries(client, args.adversaries, args.seconds, statuses))
            size = path.stat().st_size
            registry_rate = download_rate(client, "/load/model/resolve/main/model.safetensors".replace(
                "/main/", f"/{_head(client)}/"), args.downloads, size)
            plain_rate = http_server_rate(tmp, path.name, args.downloads, size)
            peak_rss = _rss_mib(process.pid, "VmHWM")
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(f"start to first answer      {start_s:6.2f} s")
    print(f"idle RSS                   {idle_rss:6.1f} MiB")
    print(f"peak RSS                   {peak_rss:6.1f} MiB")
    print(f"GET /api/models/{{id}} idle             {_pct(idle)}")
    print(f"  during a {args.size_mb} MB upload          {_pct(during_upload)}")
    print(f"  under {args.adversaries} adversarial clients       {_pct(during_attack)}")
    print(f"adversarial requests sent  {sent} in {args.seconds:.0f} s; statuses {dict(sorted(statuses.items()))}")
    print(f"upload (LFS PUT)           {upload_rate:7.1f} MB/s")
    print(f"download, {args.downloads} concurrent       registry {registry_rate:7.1f} MB/s   "
          f"http.server {plain_rate:7.1f} MB/s   ratio {registry_rate / plain_rate:.2f}")
    return 1 if any(s >= 500 for s in statuses) else 0


def _head(client: Client) -> str:
    status, text = client.request("GET", "/api/models/load/model")
    return json.loads(text)["sha"]


if __name__ == "__main__":
    sys.exit(main())
