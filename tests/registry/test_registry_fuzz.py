"""A seeded fuzz test: random methods, paths, query strings, headers and bodies on every route, web
pages included, with JSON bodies nested up to 200,000 deep.

Asserts that no request gets a 5xx and that every refused request (4xx) leaves the store exactly
as it was. Deterministic (``derandomize``): the same examples run every time.
"""
import base64
import hashlib
import json
from pathlib import Path
from urllib.parse import quote

import pytest
from helpers.hub import point_client_at
from huggingface_hub import HfApi
from huggingface_hub.utils import get_session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from se_zoo.registry import limits
from se_zoo.registry.app import HubServer

WRITE, READ = "hf_fuzz_write", "hf_fuzz_read"
REPO = "fz/repo"
FILES = ["README.md", "model.safetensors", "sub/a.txt", "sub/deep/b.txt"]

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_segment = st.one_of(
    st.sampled_from(["fz", "repo", "repo.git", "main", "v1", "sub", "a.txt", "model.safetensors", "..", ".",
                     "%2E%2E", "%2F", "%C2%B2", "%FF", "%00", "O", "REPO", "info", "lfs", "objects", "batch",
                     "verify", "0" * 40, "a" * 64, "9" * 30, "", "refs", "tree", "resolve"]),
    _text.map(lambda t: "".join(c if c.isalnum() else f"%{ord(c) & 0xFF:02X}" for c in t)),
)
_templates = [
    "/api/whoami-v2", "/api/validate-yaml", "/api/repos/create", "/api/repos/delete", "/api/models",
    "/api/models/{r}", "/api/models/{r}/revision/{s}", "/api/models/{r}/tree/{s}/{s}",
    "/api/models/{r}/paths-info/{s}", "/api/models/{r}/refs", "/api/models/{r}/commits/{s}",
    "/api/models/{r}/branch/{s}", "/api/models/{r}/tag/{s}", "/api/models/{r}/preupload/{s}",
    "/api/models/{r}/commit/{s}", "/api/models/{r}/settings", "/{r}.git/info/lfs/objects/batch",
    "/{r}.git/info/lfs/objects/verify", "/{r}.git/info/lfs/objects/{s}/{s}", "/{r}/resolve/{s}/{s}",
    "/{r}/resolve/{s}/{s}/{s}", "/api/datasets/{r}", "/{s}/{s}/{s}/{s}", "/api/models/{r}/mirror",
    "/api/models/{r}/mirror/blobs/{s}", "/api/models/{r}/mirror/blobs/{s}/{s}", "/v1/fetch/{s}",
    "/", "/-/style.css", "/login", "/{r}", "/{r}/tree/{s}/{s}", "/{r}/blob/{s}/{s}", "/{r}/commits/{s}",
]
_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), _text,
              st.sampled_from(["main", "fz", "repo", "model", "upload", "basic", "a" * 64, "sub/a.txt"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(["name", "organization", "type", "private", "files",
                                                             "paths", "objects", "oid", "size", "operation",
                                                             "content", "tag", "startingPoint", "path",
                                                             "visibility", "key", "value", "summary"]),
                                            inner, max_size=5)),
    max_leaves=12,
)


def _deep(depth: int, shape: str) -> bytes:
    """A valid JSON text nesting ``depth`` arrays or objects."""
    opener, closer = {"array": ("[", "]"), "object": ('{"paths": ', "}"), "mixed": ('{"content": [', "]}")}[shape]
    return (opener * depth + "1" + closer * depth).encode()


_nested = st.builds(_deep, st.integers(1, 200_000), st.sampled_from(["array", "object", "mixed"]))
_body = st.one_of(
    st.just(b""), st.binary(max_size=200), _json.map(lambda v: json.dumps(v).encode()),
    st.lists(_json.map(json.dumps), max_size=4).map(lambda lines: "\n".join(lines).encode()),
    _nested,
)
_CURSOR = base64.urlsafe_b64encode(b"%s:1:3" % (b"0" * 40)).decode()  # the shape of a tree page's cursor
_query = st.lists(st.tuples(st.sampled_from(["limit", "sort", "direction", "filter", "search", "author",
                                             "recursive", "blobs", "expires", "signature", "expand", "x", "p",
                                             "size", "library", "tag", "cursor"]),
                            st.one_of(_text, st.sampled_from(["1", "-1", "9" * 40, "%C2%B2", "lastModified",
                                                              _CURSOR, _CURSOR[:-3], _CURSOR + "A"]))),
                  max_size=3)
_headers = st.fixed_dictionaries({}, optional={
    "Content-Type": st.sampled_from(["application/json", "application/x-ndjson", "text/plain",
                                     "application/x-www-form-urlencoded"]),
    "Range": st.sampled_from(["bytes=0-3", "bytes=-2", "bytes=5-1", "bytes=99999-", "bytes=\u00b2-1",
                              "bytes=0-" + "9" * 300, "nonsense"]),
})


@pytest.fixture(scope="module")
def fuzz_hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz_root")
    with HubServer(root, {WRITE: "write", READ: "read"}).start() as server:
        mp = pytest.MonkeyPatch()
        point_client_at(mp, server.endpoint, WRITE, tmp_path_factory.mktemp("fuzz_home"))
        HfApi().create_repo(REPO)
        for path in FILES:
            HfApi().upload_file(path_or_fileobj=b"\0" + path.encode(), path_in_repo=path, repo_id=REPO)
        HfApi().create_tag(REPO, tag="v1")
        mp.undo()
        yield server


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.relative_to(root).parts[0] not in ("tmp", "locks")}


@settings(max_examples=600, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]),
       template=st.sampled_from(_templates), segments=st.lists(_segment, min_size=3, max_size=3),
       real_repo=st.booleans(), query=_query, headers=_headers, body=_body,
       token=st.sampled_from([None, READ, WRITE, "hf_unknown"]))
def test_fuzz_every_route(fuzz_hub, method, template, segments, real_repo, query, headers, body, token):
    root = fuzz_hub.registry.store.root
    repo = REPO if real_repo else f"{segments[0]}/{segments[1]}"
    parts = iter(segments + ["main", "sub/a.txt"])
    path = template.replace("{r}", repo)
    while "{s}" in path:
        path = path.replace("{s}", next(parts), 1)
    query_string = "&".join(f"{k}={quote(v, safe='%')}" for k, v in query)
    url = fuzz_hub.endpoint + path + (f"?{query_string}" if query_string else "")
    if token:
        headers = {**headers, "Authorization": f"Bearer {token}"}
    headers = {k: v.encode("utf-8") for k, v in headers.items()}  # raw bytes, as a hostile client sends them
    before = _snapshot(root)
    response = get_session().request(method, url, headers=headers, content=body, follow_redirects=False)
    assert response.status_code < 500, (method, url, headers, body, response.text)
    if response.status_code >= 400:
        assert _snapshot(root) == before, (method, url, response.status_code)
    if method != "HEAD" and response.status_code >= 400 and response.status_code != 405:
        if response.headers.get("content-type", "").startswith("text/html"):  # a page's own error page
            assert "<html" in response.text.lower()
        else:
            assert response.json()["error"]


_DEEP_BODIES = {  # method, path, content type, token
    "paths-info": ("POST", f"/api/models/{REPO}/paths-info/main", "application/json", None),
    "validate-yaml": ("POST", "/api/validate-yaml", "application/json", None),
    "repos/create": ("POST", "/api/repos/create", "application/json", WRITE),
    "preupload": ("POST", f"/api/models/{REPO}/preupload/main", "application/json", WRITE),
    "commit": ("POST", f"/api/models/{REPO}/commit/main", "application/x-ndjson", WRITE),
    "lfs batch": ("POST", f"/{REPO}.git/info/lfs/objects/batch", "application/json", WRITE),
    "settings": ("PUT", f"/api/models/{REPO}/settings", "application/json", WRITE),
    "mirror import": ("POST", f"/api/models/{REPO}/mirror", "application/json", WRITE),
}


@pytest.mark.parametrize("route", list(_DEEP_BODIES))
@pytest.mark.parametrize("depth", [65, 100_000])
def test_a_json_body_nested_past_the_cap_gets_a_400_naming_it(fuzz_hub, route, depth):
    method, path, content_type, token = _DEEP_BODIES[route]
    headers = {"Content-Type": content_type, **({"Authorization": f"Bearer {token}"} if token else {})}
    before = _snapshot(fuzz_hub.registry.store.root)
    for body in (_deep(depth, "array"), _deep(depth, "object"), _deep(depth, "mixed")):
        response = get_session().request(method, fuzz_hub.endpoint + path, headers=headers, content=body)
        assert response.status_code == 400, (route, body[:20], response.text)
        assert f"limit of {limits.MAX_JSON_DEPTH} levels" in response.json()["error"]
    assert _snapshot(fuzz_hub.registry.store.root) == before


def test_a_json_body_at_the_cap_is_parsed():
    assert limits.load_json(_deep(limits.MAX_JSON_DEPTH, "array")) is not None


@pytest.mark.parametrize("path", ["/", f"/{REPO}", f"/{REPO}/tree/main", f"/{REPO}/commits/main", "/api/models",
                                  f"/api/models/{REPO}/mirror/blobs/{'a' * 64}", "/v1/fetch/" + "a" * 64])
@pytest.mark.parametrize("name", ["p", "limit", "size", "expires"])
def test_every_numeric_query_parameter_refuses_unicode_digits_with_a_400_naming_it(fuzz_hub, path, name):
    response = get_session().get(f"{fuzz_hub.endpoint}{path}?{name}=%C2%B2",
                                 headers={"Authorization": f"Bearer {WRITE}"})
    assert response.status_code < 500, response.text
    if response.status_code == 400:
        assert name in response.json()["error"]


@pytest.mark.parametrize("path, name", [("/", "p"), (f"/{REPO}/commits/main", "p"), ("/api/models", "limit"),
                                        (f"/api/models/{REPO}/mirror/blobs/{'a' * 64}", "size"),
                                        ("/v1/fetch/" + "a" * 64, "expires")])
def test_each_route_reads_its_numbers_through_the_one_validator(fuzz_hub, path, name):
    for value in ("%C2%B2", "-1", "9" * 20, "1e3"):
        response = get_session().get(f"{fuzz_hub.endpoint}{path}?{name}={value}",
                                     headers={"Authorization": f"Bearer {WRITE}"})
        assert response.status_code == 400, (path, value, response.text)
        assert f"Invalid {name} " in response.json()["error"] and "ASCII digits" in response.json()["error"]
