"""Time the registry's web pages on a registry of many repositories (default 1,000).

Usage::

    python scripts/bench_registry_pages.py [--repos 1000] [--root DIR]

Fills a registry directory with se-zoo-like repos (card with front matter and ``model-index``,
config.json, a weights stand-in, metrics.jsonl), then renders each page through the app in-process
and prints the median time per page over a few runs, next to ``GET /api/models`` on the same
registry, whose cost (reading every repo's refs and head commit) the list page shares. Torch-free.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers.web_repos import se_repo  # noqa: E402

from se_zoo.registry.app import create_app  # noqa: E402


def _median_ms(client: TestClient, path: str, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.median(times)


def main() -> int:
    """Fill a registry and print page timings; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repos", type=int, default=1000)
    parser.add_argument("--root", type=Path, help="registry directory (default: a temporary one)")
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="se-zoo-pages-"))
    app = create_app(root)
    store = app.state.registry.store
    start = time.perf_counter()
    for i in range(len(store.list_repos()), args.repos):
        se_repo(store, f"org{i % 20}/model-{i:04d}", top1=50 + (i % 500) / 10)
    print(f"{args.repos} repos in {root} (filled in {time.perf_counter() - start:.1f} s)")
    with TestClient(app) as client:
        start = time.perf_counter()
        client.get("/")
        print(f"{'first list page, cold caches':38s} {(time.perf_counter() - start) * 1000:8.1f} ms")
        api = _median_ms(client, "/api/models")
        print(f"{'GET /api/models (reference)':38s} {api:8.1f} ms")
        for label, path in (("list page 1", "/"), ("list page, last", f"/?p={(args.repos - 1) // 30}"),
                            ("search 'model-09'", "/?search=model-09"), ("filter tag=se-zoo, by name",
                                                                         "/?tag=se-zoo&sort=alphabetical"),
                            ("model page", "/org0/model-0000"), ("files page", "/org0/model-0000/tree/main"),
                            ("commits page", "/org0/model-0000/commits/main")):
            ms = _median_ms(client, path)
            print(f"{label:38s} {ms:8.1f} ms   {ms / api:5.2f}x /api/models")
    return 0


if __name__ == "__main__":
    sys.exit(main())
