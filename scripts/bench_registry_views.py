"""Time three registry pages: the list of 1,000 repos, a model page, a commit with a 100 MB safetensors diff.

Usage::

    python scripts/bench_registry_views.py [--repos 1000] [--mb 100] [--runs 5] [--no-browser]

Fills a fresh registry (torch-free: se-zoo-like repos written straight into the store, then one repo
whose second commit replaces a float32 safetensors file of ``--mb`` MB by a fine-tuned one where
every value changed), then prints for each page:

- server: the time to render it through the app in-process, first (cold caches: the tensor diff is
  computed) and the median of ``--runs`` more (warm: parsed cards and the diff are cached by sha256);
- browser: headless Chromium (when installed) loading it from the registry served on loopback, from
  navigation start to the ``load`` event, on a fresh server process cache for the commit page.

Then, on the served registry, ``GET /api/models/{id}`` is timed every 20 ms while nothing else runs
and while the commit page renders on cold caches: what the tensor comparison costs other requests.

The figures are wall-clock times on whatever else the machine runs: compare them with each other.
"""
import argparse
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers.browser import find_browser  # noqa: E402
from helpers.safetensors_file import checkpoint, write_safetensors  # noqa: E402
from helpers.web_repos import commit, se_repo  # noqa: E402

from se_zoo.registry.app import HubServer, create_app  # noqa: E402
from se_zoo.registry.web import commit_view, tensors  # noqa: E402


def _fill(root: Path, repos: int, mb: int) -> str:
    app = create_app(root)
    store = app.state.registry.store
    for i in range(len(store.list_repos()), repos):
        se_repo(store, f"org{i % 20}/model-{i:04d}", top1=50 + (i % 500) / 10)
    store.create_repo("bench", "big", False)
    for seed in (0, 1):
        path = root / f"weights-{seed}.safetensors"
        write_safetensors(path, checkpoint(mb * 1000 * 1000, seed=seed))
        sha = commit(store, "bench/big", {"model.safetensors": path.read_bytes()}, title=f"weights {seed}")
        path.unlink()
    store.close()
    return sha


def _clear_caches() -> None:
    commit_view._tensor_diff.cache_clear()  # noqa: SLF001 (a cold commit page on purpose)
    tensors.read_header.cache_clear()


def _server_ms(client: TestClient, path: str, runs: int) -> tuple:
    _clear_caches()
    start = time.perf_counter()
    assert client.get(path).status_code == 200, path
    cold = (time.perf_counter() - start) * 1000
    warm = []
    for _ in range(runs):
        start = time.perf_counter()
        assert client.get(path).status_code == 200, path
        warm.append((time.perf_counter() - start) * 1000)
    return cold, statistics.median(warm)


def _browser_ms(endpoint: str, pages: dict, runs: int) -> dict:
    binary, driver = find_browser()
    if binary is None or driver is None:
        return {}
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,1200", f"--user-data-dir={tempfile.mkdtemp(prefix='bench-chromium-')}"):
        options.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    load = "const n = performance.getEntriesByType('navigation')[0]; return [n.loadEventEnd, n.responseEnd];"
    results = {}
    try:
        for label, path in pages.items():
            times = []
            for run in range(runs + 1):
                if run == 0:
                    _clear_caches()
                chrome.get(endpoint + path)
                times.append(chrome.execute_script(load))
            results[label] = (times[0][0], statistics.median(t[0] for t in times[1:]))
    finally:
        chrome.quit()
    return results


def _probe(endpoint: str, work) -> str:
    """Latency of ``GET /api/models/org0/model-0000`` every 20 ms while ``work()`` runs, as a line."""
    stop, times = threading.Event(), []

    def loop() -> None:
        while not stop.is_set():
            start = time.perf_counter()
            urllib.request.urlopen(f"{endpoint}/api/models/org0/model-0000").read()
            times.append((time.perf_counter() - start) * 1000)
            time.sleep(0.02)

    thread = threading.Thread(target=loop)
    thread.start()
    start = time.perf_counter()
    try:
        work()
    finally:
        stop.set()
        thread.join()
    times.sort()
    return (f"{time.perf_counter() - start:6.1f} s, {len(times)} requests, p50 {statistics.median(times):.1f} ms, "
            f"p99 {times[max(0, int(len(times) * 0.99) - 1)]:.1f} ms, max {times[-1]:.1f} ms")


def main() -> int:
    """Fill a registry, time the pages, print a table; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repos", type=int, default=1000)
    parser.add_argument("--mb", type=int, default=100, help="size of each safetensors file of the commit")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="se-zoo-views-"))
    start = time.perf_counter()
    sha = _fill(root, args.repos, args.mb)
    print(f"{args.repos} repos and a {args.mb} MB safetensors commit in {root} "
          f"(filled in {time.perf_counter() - start:.1f} s)")
    pages = {f"list page ({args.repos} repos)": "/", "model page": "/org0/model-0000",
             f"commit page ({args.mb} MB safetensors diff)": f"/bench/big/commit/{sha}"}
    app = create_app(root)
    with TestClient(app) as client:
        server = {label: _server_ms(client, path, args.runs) for label, path in pages.items()}
    app.state.registry.store.close()
    browser, probes = {}, {}
    hub = HubServer(root, {}).start()
    try:
        if not args.no_browser:
            browser = _browser_ms(hub.endpoint, pages, args.runs)
        commit_url = hub.endpoint + list(pages.values())[-1]
        probes["GET /api/models/{id}, idle"] = _probe(hub.endpoint, lambda: time.sleep(3))
        _clear_caches()
        probes["... while a cold commit page renders"] = _probe(
            hub.endpoint, lambda: urllib.request.urlopen(commit_url).read())
    finally:
        hub.stop()
    print(f"{'page':44s} {'server cold':>12s} {'server warm':>12s} {'browser cold':>13s} {'browser warm':>13s}")
    for label in pages:
        cold, warm = server[label]
        shown = [f"{cold:9.0f} ms", f"{warm:9.1f} ms"]
        if label in browser:
            shown += [f"{browser[label][0]:10.0f} ms", f"{browser[label][1]:10.0f} ms"]
        print(f"{label:44s} " + " ".join(f"{s:>12s}" for s in shown))
    for label, line in probes.items():
        print(f"{label:44s} {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
