"""Bounded work per request: tree listings paged like the Hub's, and small requests never stuck behind large ones.

The 20,000-file repositories are written straight into the store (one commit, 20 distinct blobs), which
takes a few seconds instead of the minutes an upload of 20,000 files would.
"""
import http.client
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from huggingface_hub import HfApi, snapshot_download
from huggingface_hub.utils import build_hf_headers, get_session

import helpers
from helpers.hub import spawn_hub_server
from se_zoo.registry import limits
from se_zoo.registry.store import tree_index as tree_index_module
from se_zoo.registry.store.storage import Store

FILES = 20_000
LOADER = Path(helpers.__file__).parent / "tree_load.py"


def _content(i: int) -> bytes:
    return b"file %d\n" % (i % 20)


def _path(i: int) -> str:
    return f"d{i % 20:02d}/s{i % 7}/f{i:05d}.txt"


def _fill(store: Store, namespace: str, name: str, count: int = FILES) -> set:
    """Create ``namespace/name`` holding ``count`` small files in one commit; returns their paths."""
    store.create_repo(namespace, name, False)
    blobs = [store.put_bytes(_content(k)) for k in range(20)]
    operations = [{"op": "add", "path": _path(i), "sha256": blobs[i % 20], "size": len(_content(i)), "lfs": False}
                  for i in range(count)]
    store.commit(namespace, name, "main", operations, "many files")
    return {op["path"] for op in operations}


def _get(hub, path, **params):
    return get_session().get(hub.endpoint + path, params=params, headers=build_hf_headers(token=hub.token))


def _next(response):
    return response.links.get("next", {}).get("url")


def test_tree_listing_of_20000_files_is_paged_like_the_hub(hub_server, monkeypatch, tmp_path):
    store, ns = hub_server.registry.store, hub_server.namespace
    files = _fill(store, ns, "many")
    folders = {p.rsplit("/", k)[0] for p in files for k in (1, 2)}
    repo_id, api = f"{ns}/many", HfApi()
    built, entries = [], []
    index_class = tree_index_module.TreeIndex
    original_init, original_entry = index_class.__init__, index_class.entry
    monkeypatch.setattr(index_class, "__init__", lambda self, f: built.append(1) or original_init(self, f))
    monkeypatch.setattr(index_class, "entry", lambda self, p: entries.append(1) or original_entry(self, p))

    listed = [(type(e).__name__, e.path) for e in api.list_repo_tree(repo_id, recursive=True)]
    assert len(listed) == len(set(listed)) == len(files) + len(folders)
    assert {p for kind, p in listed if kind == "RepoFile"} == files
    assert {p for kind, p in listed if kind == "RepoFolder"} == folders
    # one index for the commit, built once; each page made only its own entries
    assert len(built) == 1 and len(entries) == len(listed)
    expanded = [e.path for e in api.list_repo_tree(repo_id, recursive=True, expand=True)]
    assert len(expanded) == len(set(expanded)) == len(listed)
    assert len(built) == 1
    assert sorted(s.rfilename for s in api.model_info(repo_id).siblings) == sorted(files)  # the Hub's: not paged
    top = [e.path for e in api.list_repo_tree(repo_id)]
    assert top == sorted(f"d{k:02d}" for k in range(20))

    first = _get(hub_server, f"/api/models/{repo_id}/tree/main", recursive="true")
    assert first.status_code == 200 and len(first.json()) == limits.MAX_TREE_PAGE
    assert 'rel="next"' in first.headers["Link"] and "cursor=" in _next(first)
    assert parse_qs(urlsplit(_next(first)).query)["recursive"] == ["true"]
    page = _get(hub_server, f"/api/models/{repo_id}/tree/main", recursive="true", expand="true")
    assert len(page.json()) == limits.MAX_TREE_EXPAND_PAGE and _next(page)
    # the cursor keeps to the listed commit: a commit to main in between changes no later page
    api.upload_file(path_or_fileobj=b"new", path_in_repo="d00/aaa-new.txt", repo_id=repo_id)
    pages, url = [first.json()], _next(first)
    while url:
        response = get_session().get(url, headers=build_hf_headers(token=hub_server.token))
        assert response.status_code == 200 and len(response.json()) <= limits.MAX_TREE_PAGE
        pages.append(response.json())
        url = _next(response)
    assert [e["path"] for p in pages for e in p] == [p for _, p in listed]
    assert len(pages) == -(-len(listed) // limits.MAX_TREE_PAGE)
    # a smaller `limit`, a folder, non-recursive: the same entries a page at a time
    sub, url = [], f"{hub_server.endpoint}/api/models/{repo_id}/tree/main/d03/s1?limit=7"
    while url:
        response = get_session().get(url)
        assert response.status_code == 200 and len(response.json()) <= 7
        sub += [e["path"] for e in response.json()]
        url = _next(response)
    assert sub == sorted(p for p in files if p.startswith("d03/s1/"))

    cursor = parse_qs(urlsplit(_next(first)).query)["cursor"][0]
    for bad in ("not-a-cursor", cursor[:-2], "QUJD", cursor + "x" * 200):
        r = _get(hub_server, f"/api/models/{repo_id}/tree/main", recursive="true", cursor=bad)
        assert r.status_code == 400 and "cursor" in r.json()["error"], (bad, r.text)
    r = _get(hub_server, f"/api/models/{repo_id}/tree/main", cursor=cursor)  # made for a recursive listing
    assert r.status_code == 400 and "recursive" in r.json()["error"]
    api.create_repo(f"{ns}/other")
    r = _get(hub_server, f"/api/models/{ns}/other/tree/main", recursive="true", cursor=cursor)
    assert r.status_code == 400 and "cursor" in r.json()["error"]
    for limit in ("0", "²", "-1"):
        r = _get(hub_server, f"/api/models/{repo_id}/tree/main", limit=limit)
        assert r.status_code == 400 and "limit" in r.json()["error"], r.text

    folder = snapshot_download(repo_id, allow_patterns=["d04/s2/*"], cache_dir=tmp_path / "snap")
    got = {str(p.relative_to(folder)): p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}
    assert got == {_path(i): _content(i) for i in range(FILES) if _path(i).startswith("d04/s2/")}


def _timed_get(endpoint: str, path: str) -> float:
    url = urlsplit(endpoint)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    start = time.perf_counter()
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        assert response.status == 200, (path, response.status)
        return time.perf_counter() - start
    finally:
        connection.close()


def _timed_post(endpoint: str, path: str, body: bytes) -> float:
    url = urlsplit(endpoint)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=300)
    start = time.perf_counter()
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        assert response.status == 200, (path, response.status)
        return time.perf_counter() - start
    finally:
        connection.close()


def _sample_while(running, measure, pause: float = 0.02) -> list:
    """Call ``measure()`` every ``pause`` seconds while ``running()``; the results."""
    samples = []
    while running():
        samples.append(measure())
        time.sleep(pause)
    return samples


def _p99(samples: list) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


@pytest.mark.slow
def test_small_requests_stay_fast_while_large_listings_and_bodies_run(tmp_path):
    root = tmp_path / "root"
    store = Store(root)
    try:
        files = _fill(store, "load", "many")
        _fill(store, "load", "small", count=3)
    finally:
        store.close()
    hub = spawn_hub_server(root)
    try:
        small = "/api/models/load/small"
        _timed_get(hub.endpoint, "/api/models/load/many/tree/main?recursive=true")  # the index is built once
        quiet = [_timed_get(hub.endpoint, small) for _ in range(50)]

        # the measurement: 16 clients x 3 recursive+expand listings of 20,000 files, all pages
        started = time.perf_counter()
        loaders = [subprocess.Popen([sys.executable, str(LOADER), hub.endpoint, "load/many", "3"],
                                    stdout=subprocess.PIPE, text=True) for _ in range(16)]
        listing = _sample_while(lambda: any(p.poll() is None for p in loaders), lambda: _timed_get(hub.endpoint, small))
        outputs = [json.loads(p.communicate()[0]) for p in loaders]
        load_seconds = time.perf_counter() - started
        folders = {p.rsplit("/", k)[0] for p in files for k in (1, 2)}
        assert all(o["entries"] == [len(files) + len(folders)] * 3 for o in outputs), outputs

        # six anonymous ~250 KiB validate-yaml bodies, six 1,000-path paths-info requests and the
        # description of the 20,000-file repository, in parallel
        metadata = "".join(f"key{i}: [a, b, {{c: d}}]\n" for i in range(9_000))[: 250 * 1024]
        large_yaml = json.dumps({"content": f"---\n{metadata}---\n"}).encode()
        small_yaml = json.dumps({"content": "---\nlibrary_name: timm\n---\n# card\n"}).encode()
        paths = json.dumps({"paths": sorted(files)[:limits.MAX_PATHS_INFO]}).encode()
        _timed_post(hub.endpoint, "/api/validate-yaml", large_yaml)  # the helper process is started
        with ThreadPoolExecutor(16) as pool:
            flood = [pool.submit(_timed_post, hub.endpoint, "/api/validate-yaml", large_yaml) for _ in range(6)]
            flood += [pool.submit(_timed_post, hub.endpoint, "/api/models/load/many/paths-info/main", paths)
                      for _ in range(6)]
            flood += [pool.submit(_timed_get, hub.endpoint, "/api/models/load/many") for _ in range(4)]
            time.sleep(0.2)
            busy = lambda: any(not f.done() for f in flood)  # noqa: E731
            mixed = _sample_while(busy, lambda: (_timed_post(hub.endpoint, "/api/validate-yaml", small_yaml),
                                                 _timed_get(hub.endpoint, small)))
            large = [f.result() for f in flood]
    finally:
        hub.process.kill()
        hub.process.wait()
    small_yaml_waits, small_get_waits = [m[0] for m in mixed], [m[1] for m in mixed]
    report = (f"quiet p50 {statistics.median(quiet):.3f}s; during {len(loaders)}x3 listings "
              f"({sum(o['pages'] for o in outputs)} pages in {load_seconds:.1f}s): {len(listing)} samples, "
              f"p99 {_p99(listing):.3f}s, max {max(listing):.3f}s; during 6 validate-yaml + 6 paths-info + 4 repo info "
              f"(each {min(large):.2f}-{max(large):.2f}s): validate-yaml p99 {_p99(small_yaml_waits):.3f}s "
              f"max {max(small_yaml_waits):.3f}s, GET p99 {_p99(small_get_waits):.3f}s "
              f"max {max(small_get_waits):.3f}s ({len(mixed)} samples)")
    print(report)
    assert len(listing) >= 100 and len(mixed) >= 30, report  # enough samples for a p99 taken under load
    assert _p99(listing) <= 0.5, report
    assert _p99(small_yaml_waits) <= 0.5 and max(small_yaml_waits) <= 1.0, report
    assert _p99(small_get_waits) <= 0.5 and max(small_get_waits) <= 1.0, report
