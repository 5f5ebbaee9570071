"""The registry's structure: one route table, no private names across modules, a generated limits table."""
import ast
import base64
import json
from pathlib import Path

from starlette.testclient import TestClient

import se_zoo.registry
from se_zoo.registry import limits
from se_zoo.registry.app import create_app

PACKAGE = Path(se_zoo.registry.__file__).parent
ROUTES = PACKAGE / "routes.py"
HUB_DOC = PACKAGE.parents[1] / "docs" / "hub.md"


def _modules():
    return {path: ast.parse(path.read_text(), str(path)) for path in sorted(PACKAGE.rglob("*.py"))}


def _is_registry_import(node: ast.ImportFrom) -> bool:
    return node.level > 0 or (node.module or "").startswith("se_zoo.registry")


def test_the_route_table_is_the_only_dispatch_on_request_paths():
    offenders = []
    for path, tree in _modules().items():
        if path == ROUTES:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Match):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: a match statement")
            if isinstance(node, ast.Constant) and node.value == "raw_path":
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: reads the raw request path")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names = {a.arg for a in node.args.args + node.args.kwonlyargs}
                if names & {"segs", "segments"}:
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {node.name} takes path segments")
    assert offenders == []


def test_the_route_table_names_every_part():
    source = ROUTES.read_text()
    for shape in ('"/api/whoami-v2"', '.git/info/lfs/objects/batch"', '/resolve/{revision}/{path:path}"',
                  '"/v1/xorbs/{prefix}/{xorb}"', '/mirror/blobs/{{sha256}}/{{size}}"', '"/login"'):
        assert shape in source, shape


def test_no_registry_module_reads_another_ones_private_names():
    offenders = []
    for path, tree in _modules().items():
        outside = set()  # names bound to modules outside the registry (os._exit is the standard library's)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                outside.update((a.asname or a.name).split(".")[0] for a in node.names
                               if not a.name.startswith("se_zoo.registry"))
            elif isinstance(node, ast.ImportFrom) and not _is_registry_import(node):
                outside.update(a.asname or a.name for a in node.names)
        where = path.relative_to(PACKAGE)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and _is_registry_import(node):
                offenders += [f"{where}:{node.lineno}: imports {a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                owner = node.value.id if isinstance(node.value, ast.Name) else None
                if owner not in ("self", "cls") and owner not in outside:
                    offenders.append(f"{where}:{node.lineno}: reads {ast.unparse(node)}")
    assert offenders == []


def test_every_limit_is_defined_in_the_limits_module():
    elsewhere = []
    for path, tree in _modules().items():
        if path.name == "limits.py" and path.parent == PACKAGE:
            continue
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, ast.AnnAssign) else []
            elsewhere += [f"{path.relative_to(PACKAGE)}: {t.id}" for t in targets
                          if isinstance(t, ast.Name) and t.id.startswith("MAX_")]
    assert elsewhere == []
    defined = {name for name in vars(limits) if name.startswith("MAX_")}
    assert defined <= {name for _, name, _ in limits.DOCUMENTED}, "every MAX_* limit is in docs/hub.md's table"


def test_docs_limits_table_is_the_generated_one():
    document = HUB_DOC.read_text(encoding="utf-8")
    assert limits.with_limits_table(document) == document, (
        "docs/hub.md's limits table differs from se_zoo/registry/limits.py; regenerate it with "
        "`python -m se_zoo.registry.limits --write docs/hub.md`")


def test_limits_table_shows_the_enforced_values():
    table = limits.limits_table()
    assert f"| paths-info paths | {limits.MAX_PATHS_INFO:,} |" in table
    assert "| JSON request body (preupload, LFS batch, paths-info, settings, ...) | 2 MiB |" in table
    assert "| one file (default of `--max-file-size`; the Hub's LFS cap) | 50 GB |" in table


def test_a_revision_with_an_encoded_slash_stays_one_path_segment(tmp_path):
    client = TestClient(create_app(tmp_path, {"w": "write"}), headers={"Authorization": "Bearer w"})
    assert client.post("/api/repos/create", json={"organization": "a", "name": "b"}).status_code == 200
    content = base64.b64encode(b"hi").decode()
    commit = "\n".join(json.dumps(line) for line in (
        {"key": "header", "value": {"summary": "one file"}},
        {"key": "file", "value": {"path": "x.txt", "content": content, "encoding": "base64"}}))
    assert client.post("/api/models/a/b/commit/main", content=commit).status_code == 200
    assert client.post("/api/models/a/b/branch/feature%2Fx", json={}).status_code == 200
    assert client.get("/api/models/a/b/revision/feature%2Fx").json()["sha"]
    assert client.get("/api/models/a/b/revision/feature/x").status_code == 404  # two segments: no such route
    moved = client.get("/a/b/resolve/feature%2Fx/x.txt", follow_redirects=False)
    assert moved.status_code == 302 and moved.headers["x-repo-commit"] in moved.headers["location"]
    assert client.get(moved.headers["location"]).content == b"hi"
    assert client.get("/a/b/tree/feature%2Fx").status_code == 200  # the page too
