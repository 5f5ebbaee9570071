"""Caps and numeric parameters: bad or oversized input is a 4xx naming the limit, never a 500."""
import base64
import http.client
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from huggingface_hub import HfApi
from huggingface_hub.utils import build_hf_headers, get_session

from se_zoo.registry import limits


def _raw(hub, method, path, token=None, **kwargs):
    headers = {**(build_hf_headers(token=token) if token else {}), **kwargs.pop("headers", {})}
    return get_session().request(method, hub.endpoint + path, headers=headers, **kwargs)


def _repo(hub, name, files=None):
    repo_id = f"{hub.namespace}/{name}"
    HfApi().create_repo(repo_id)
    if files:
        ops_lines = [json.dumps({"key": "header", "value": {"summary": "files"}})]
        for path, data in files.items():
            ops_lines.append(json.dumps({"key": "file", "value": {
                "path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"}}))
        r = _raw(hub, "POST", f"/api/models/{repo_id}/commit/main", token=hub.token,
                 content="\n".join(ops_lines).encode(), headers={"Content-Type": "application/x-ndjson"})
        assert r.status_code == 200, r.text
    return repo_id


def test_numeric_parameters_take_ascii_digits_only(hub_server):
    repo_id = _repo(hub_server, "numbers", {"a.txt": b"hello"})
    for value in ["%C2%B2", "9" * 5000, "-1", "1e3", "%EF%BC%91"]:  # superscript two, 5000 digits, fullwidth 1
        r = _raw(hub_server, "GET", f"/api/models?limit={value}")
        assert r.status_code == 400, (value, r.status_code)
        assert "limit" in r.json()["error"] and str(limits.MAX_INT_DIGITS) in r.json()["error"]
    sha = "0" * 64
    for size, expires in [("9" * 5000, "1"), ("5", "9" * 5000), ("%C2%B2", "1"), ("5", "%C2%B2")]:
        r = _raw(hub_server, "PUT", f"/{repo_id}.git/info/lfs/objects/{sha}/{size}?expires={expires}&signature=x",
                 content=b"12345")
        assert r.status_code == 400, (size, expires, r.status_code)
    for header in ["bytes=0-" + "9" * 5000, "bytes=" + "9" * 5000 + "-", "bytes=-" + "9" * 5000, "bytes=\u00b2-3"]:
        r = _raw(hub_server, "GET", f"/{repo_id}/resolve/main/a.txt", headers={"Range": header.encode("utf-8")},
                 follow_redirects=True)
        assert r.status_code < 500, (header, r.status_code)
        assert r.status_code in (200, 416) and (r.status_code == 416 or r.content == b"hello")


def test_validate_yaml_is_capped_and_safe(hub_server):
    big = "---\n" + "".join(f"key{i}: value\n" for i in range(40_000)) + "---\n"  # ~600 KB of metadata
    r = _raw(hub_server, "POST", "/api/validate-yaml", json={"content": big})
    assert r.status_code == 413 and str(limits.MAX_YAML_METADATA) in r.json()["error"]
    r = _raw(hub_server, "POST", "/api/validate-yaml", json={"content": "x" * (limits.MAX_YAML_CONTENT + 1)})
    assert r.status_code == 413 and str(limits.MAX_YAML_CONTENT) in r.json()["error"]
    bomb = "---\na: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"b{i}: &b{i} [*{'a' if i == 0 else f'b{i - 1}'}, *{'a' if i == 0 else f'b{i - 1}'}]\n" for i in range(200)
    ) + "---\n"
    r = _raw(hub_server, "POST", "/api/validate-yaml", json={"content": bomb})
    assert r.status_code == 400 and "aliases" in r.json()["errors"][0]["message"]
    r = _raw(hub_server, "POST", "/api/validate-yaml", json={"content": "---\nx: !!python/object:os.system ls\n---\n"})
    assert r.status_code == 400  # the safe loader builds no Python objects
    ok = _raw(hub_server, "POST", "/api/validate-yaml", json={"content": "---\nlibrary_name: timm\n---\n# card\n"})
    assert ok.status_code == 200 and ok.json() == {"errors": [], "warnings": []}


def test_paths_info_is_capped_and_indexed(hub_server):
    files = {f"d{i % 7}/sub{i % 3}/f{i}.txt": str(i).encode() for i in range(60)}
    files["top.txt"] = b"top"
    repo_id = _repo(hub_server, "paths", files)
    too_many = [f"p{i}" for i in range(limits.MAX_PATHS_INFO + 1)]
    r = _raw(hub_server, "POST", f"/api/models/{repo_id}/paths-info/main", json={"paths": too_many})
    assert r.status_code == 400 and str(limits.MAX_PATHS_INFO) in r.json()["error"]
    asked = ["top.txt", "d1", "d1/sub2", "d1/sub2/", "missing", "d1/sub", "d0/sub0/f0.txt"]
    infos = HfApi().get_paths_info(repo_id, asked)
    got = {(type(i).__name__, i.path) for i in infos}
    assert got == {("RepoFile", "top.txt"), ("RepoFolder", "d1"), ("RepoFolder", "d1/sub2"),
                   ("RepoFile", "d0/sub0/f0.txt")}
    folder_oids = {i.path: i.tree_id for i in infos if type(i).__name__ == "RepoFolder"}
    tree = {e.path: e for e in HfApi().list_repo_tree(repo_id, recursive=True)}
    assert folder_oids["d1"] == tree["d1"].tree_id and folder_oids["d1/sub2"] == tree["d1/sub2"].tree_id
    assert {p for p, e in tree.items() if type(e).__name__ == "RepoFile"} == set(files)


def test_batch_and_preupload_counts_are_capped(hub_server):
    repo_id = _repo(hub_server, "counts")
    objects = [{"oid": "a" * 64, "size": 1}] * (limits.MAX_BATCH_OBJECTS + 1)
    r = _raw(hub_server, "POST", f"/{repo_id}.git/info/lfs/objects/batch", token=hub_server.token,
             json={"operation": "upload", "objects": objects})
    assert r.status_code == 400 and str(limits.MAX_BATCH_OBJECTS) in r.json()["error"]
    announced = [{"path": f"f{i}", "size": 1, "sample": ""} for i in range(limits.MAX_PREUPLOAD_FILES + 1)]
    r = _raw(hub_server, "POST", f"/api/models/{repo_id}/preupload/main", token=hub_server.token,
             json={"files": announced})
    assert r.status_code == 400 and str(limits.MAX_PREUPLOAD_FILES) in r.json()["error"]


def _send_head(endpoint: str, head: bytes) -> int:
    url = urlsplit(endpoint)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(head)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status


def test_request_header_size_and_count_are_limited(hub_server):
    ok = b"GET /api/models HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n"
    assert _send_head(hub_server.endpoint, ok) == 200
    many = b"GET /api/models HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(2000)) + b"\r\n"
    assert _send_head(hub_server.endpoint, many) in (400, 431)
    fewer = b"GET /api/models HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-H%d: v\r\n" % i for i in range(limits.MAX_HEADERS + 1)) + b"\r\n"
    assert _send_head(hub_server.endpoint, fewer) == 431
    huge = b"GET /api/models HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    assert _send_head(hub_server.endpoint, huge) in (400, 431)
    unfinished = b"GET /api/models HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (2 * limits.HEADER_BYTES)
    assert _send_head(hub_server.endpoint, unfinished) == 431  # refused before the header line ends


def _timed_post(endpoint: str, body: bytes, source: str = "127.0.0.1") -> tuple:
    url = urlsplit(endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=300, source_address=(source, 0))
    start = time.perf_counter()
    try:
        conn.request("POST", "/api/validate-yaml", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - start
    finally:
        conn.close()


def test_validate_yaml_small_requests_never_queue_and_each_client_queues_behind_its_own(hub_server):
    metadata = "".join(f"key{i}: [a, b, {{c: d}}]\n" for i in range(9_000))[: 250 * 1024]
    large = json.dumps({"content": f"---\n{metadata}---\n"}).encode()  # about 0.6 s of parsing each
    small = json.dumps({"content": "---\nlibrary_name: timm\n---\n# card\n"}).encode()
    long_card = json.dumps({"content": "---\nlibrary_name: timm\n---\n" + "A long card. " * 5000}).encode()
    assert len(small) <= limits.FAST_YAML_BODY < len(long_card) < len(large)
    assert _timed_post(hub_server.endpoint, large)[0] == 200  # the helper process is started
    with ThreadPoolExecutor(8) as pool:
        flood = [pool.submit(_timed_post, hub_server.endpoint, large) for _ in range(6)]  # one client
        time.sleep(0.3)
        small_waits = [_timed_post(hub_server.endpoint, small) for _ in range(5)]
        other_client = _timed_post(hub_server.endpoint, long_card, source="127.0.0.2")
        flooded = [f.result() for f in flood]
    assert {status for status, _ in flooded} == {200} and {s for s, _ in small_waits} == {200}
    assert max(wait for _, wait in small_waits) < 1.0, small_waits
    # another client's large request waits behind one of the flood's, not all six
    assert other_client[0] == 200 and other_client[1] < max(wait for _, wait in flooded) / 2, (other_client, flooded)
