"""The registry's web pages rendered through the app: content, hostile cards, private repos, paging."""
import json
import math
import re
import struct
import urllib.request

import pytest
from helpers.web_repos import OWN_SCRIPT, Probe, commit, f32, page_text, safetensors_bytes, se_repo
from starlette.testclient import TestClient

from se_zoo.registry.app import create_app
from se_zoo.registry.limits import MAX_CARD_LINE_CHARS, MAX_CARD_TABLE_COLUMNS, MAX_CARD_TABLE_ROWS
from se_zoo.registry.web import CSP
from se_zoo.registry.web.chart import curves, parse_metrics

READ, WRITE = "web-read-token", "web-write-token"


@pytest.fixture
def app(tmp_path):
    return create_app(tmp_path / "hub", {READ: "read", WRITE: "write"})


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


HOSTILE_CARD = """---
tags: ['<script>alert("tag")</script>', 'ok-tag']
license: '"><img src=x onerror=alert(1)>'
model-index: {not: a list}
---

# Hostile <img src=x onerror="alert('title')">

<script>alert('inline')</script>
<img src="x" onerror="alert('img')">
<a href="javascript:alert('raw')">raw link</a>
[md link](javascript:alert('md'))
[spaced](  JaVaScRiPt:alert('case'))
<iframe src="https://example.com"></iframe>
<svg onload="alert('svg')"><circle r="1"/></svg>
<style>body { display: none }</style>
<div onclick="alert('div')" style="background:url(javascript:alert(1))">**bold** stays</div>
<form action="https://evil.example"><input name="x"></form>
<object data="data:text/html,<script>alert(1)</script>"></object>
<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data link</a>
<meta http-equiv="refresh" content="0;url=https://evil.example">

**kept bold** and [a safe link](https://example.com/docs).
"""


def test_hostile_card_renders_inert(app, client):
    store = app.state.registry.store
    store.create_repo("evil", "card", False)
    commit(store, "evil/card", {"README.md": HOSTILE_CARD.encode(), "config.json": b'{"architecture": "<b>x</b>"}',
                                "metrics.jsonl": b'{"epoch": "<script>", "top1": "NaN"}\nnot json\n[1, 2]\n'},
           title='<script>alert("commit")</script>', message="<img src=x onerror=alert(1)>")
    pages = ["/evil/card", "/evil/card/blob/main/README.md", "/evil/card/tree/main", "/evil/card/commits/main",
             "/", "/evil/card/blob/main/metrics.jsonl", "/evil/card/commit/main"]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == CSP
        probe = Probe(response.text)
        assert probe.scripts == [] and probe.handlers == [] and probe.script_urls == [], (path, probe.__dict__)
        own = response.text.count(f'<script src="{OWN_SCRIPT}" defer></script>')
        assert response.text.lower().count("<script") == own <= 1, path
    card = client.get("/evil/card").text
    assert "<strong>kept bold</strong>" in card and 'href="https://example.com/docs"' in card
    assert "&lt;script&gt;alert(&#34;tag&#34;)&lt;/script&gt;" in card  # front matter escaped, shown as text
    assert "<style" not in card.lower() and "<form action=\"https" not in card
    assert 'id="curves"' not in card  # no usable numbers in that metrics.jsonl: no chart
    assert "script-src 'self';" in CSP and "default-src 'none'" in CSP and "unsafe" not in CSP


def test_private_repo_is_a_404_like_a_missing_one_until_a_token_is_entered(app, client):
    store = app.state.registry.store
    se_repo(store, "team/secret", private=True)
    paths = ["/team/secret", "/team/secret/tree/main", "/team/secret/blob/main/config.json",
             "/team/secret/commits/main"]
    hidden = [client.get(p) for p in paths]
    assert [r.status_code for r in hidden] == [404] * 4
    assert "team/secret" not in client.get("/").text
    client.cookies.set("se_zoo_token", "not-a-token")
    assert client.get("/team/secret").text == hidden[0].text
    client.cookies.clear()

    refused = client.post("/login", data={"token": "wrong", "next": "/team/secret"}, follow_redirects=False)
    assert refused.status_code == 401 and "set-cookie" not in refused.headers
    login = client.post("/login", data={"token": READ, "next": "/team/secret"}, follow_redirects=False)
    assert login.status_code == 303 and login.headers["location"] == "/team/secret"
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and "Path=/" in cookie
    shown = [client.get(p) for p in paths]
    assert [r.status_code for r in shown] == [200] * 4
    assert "Model card for secret" in shown[0].text and 'class="badge private"' in shown[0].text
    assert "team/secret" in client.get("/").text
    download = client.get("/team/secret/resolve/main/config.json")  # the files page's links work too
    assert download.status_code == 200 and b"se_zoo_resnet18" in download.content

    logout = client.post("/logout", follow_redirects=False)
    assert logout.status_code == 303 and 'se_zoo_token=""' in logout.headers["set-cookie"]
    client.cookies.clear()
    again = client.get("/team/secret")
    store.delete_repo("team", "secret")
    missing = client.get("/team/secret")
    assert again.status_code == missing.status_code == 404 and again.text == missing.text
    assert {k: v for k, v in again.headers.items() if k != "date"} == \
        {k: v for k, v in missing.headers.items() if k != "date"}
    assert client.post("/login", data={"token": READ, "next": "//evil.example/x"},
                       follow_redirects=False).headers["location"] == "/"


def test_list_page_searches_sorts_filters_and_pages(app, client):
    store = app.state.registry.store
    for i in range(64):
        se_repo(store, f"zoo/model-{i:02d}", top1=50 + i / 2)
    store.create_repo("other", "plain", False)
    commit(store, "other/plain", {"README.md": b"---\nlibrary_name: transformers\ntags: [nlp]\n---\n# Plain\n"})
    first = client.get("/?sort=alphabetical")
    rows = re.findall(r'class="model-id" href="/([^"]+)"', first.text)
    assert len(rows) == 30 and rows[0] == "other/plain" and rows[1] == "zoo/model-00"
    assert 'id="total">65<' in first.text and "page 1 of 3" in first.text
    last = client.get("/?sort=alphabetical&p=2")
    assert re.findall(r'class="model-id" href="/([^"]+)"', last.text) == [f"zoo/model-{i}" for i in range(59, 64)]
    assert re.findall(r'class="model-id" href="/([^"]+)"', client.get("/?search=MODEL-4").text) == \
        [f"zoo/model-{i}" for i in range(49, 39, -1)]  # newest first by default
    timm_only = client.get("/?library=timm")
    assert 'id="total">64<' in timm_only.text and "other/plain" not in timm_only.text
    assert re.findall(r'class="model-id" href="/([^"]+)"', client.get("/?tag=nlp").text) == ["other/plain"]
    assert "top-1 81.50" in client.get("/?search=model-63").text
    for bad in ("/?sort=stars", "/?p=-1", "/?p=x"):
        response = client.get(bad)
        assert response.status_code == 400 and "Invalid" in response.text, bad


def test_files_blob_and_history_pages(app, client):
    store = app.state.registry.store
    store.create_repo("org", "repo", False)
    first = commit(store, "org/repo", {"README.md": b"# First\n", "a/b/deep.txt": b"deep <text> & more",
                                       "old.txt": b"old"}, title="First commit")
    store.set_ref("org", "repo", "tags", "v1", first, must_exist=False)
    commit(store, "org/repo", {"README.md": b"# Second\n", "blob.bin": b"\0\1\2"}, title="Second commit",
           message="with a body", deleted=("old.txt",))
    root = client.get("/org/repo/tree/main").text
    assert re.findall(r'<tr class="dir"><td colspan="5"><a href="([^"]+)">', root) == ["/org/repo/tree/main/a"]
    rows = dict(re.findall(r'<a href="/org/repo/blob/main/([^"]+)">[^<]+</a></td>.*?class="commit-title">([^<]+)<',
                           root, re.S))
    assert rows == {"README.md": "Second commit", "blob.bin": "Second commit"}
    assert "deep.txt" in client.get("/org/repo/tree/main/a/b").text
    assert client.get("/org/repo/tree/main/a/b/deep.txt", follow_redirects=False).headers["location"] == \
        "/org/repo/blob/main/a/b/deep.txt"
    assert "deep &lt;text&gt; &amp; more" in client.get("/org/repo/blob/main/a/b/deep.txt").text
    assert 'id="blob-binary"' in client.get("/org/repo/blob/main/blob.bin").text
    readme = client.get("/org/repo/blob/main/README.md").text
    assert "<h1>Second</h1>" in readme and '<pre class="blob" id="blob-text"># Second\n</pre>' in readme
    at_tag = client.get("/org/repo/tree/v1").text
    assert '<article class="card readme" id="card"><h1>First</h1>' in at_tag  # the card at that revision
    assert "old.txt" in at_tag and "blob.bin" not in at_tag and 'href="/org/repo/tree/v1">v1</a>' in at_tag
    history = page_text(client.get("/org/repo/commits/main").text)
    assert history.index("Second commit") < history.index("First commit") < history.index("initial commit")
    assert "with a body" in history and "deleted old.txt" in history and "modified README.md" in history
    assert "added blob.bin" in history and "added a/b/deep.txt" in history
    assert "Second commit" not in client.get("/org/repo/commits/v1").text
    store.set_ref("org", "repo", "branches", "feature/x", first, must_exist=False)
    branch = client.get("/org/repo/tree/feature%2Fx").text  # a "/" in a revision is sent encoded, as the Hub does
    assert 'href="/org/repo/blob/feature%2Fx/old.txt"' in branch
    assert 'href="/org/repo/tree/feature%2Fx">feature/x<' in branch
    assert client.get("/org/repo/blob/feature%2Fx/old.txt").status_code == 200
    for path, status in (("/org/repo/tree/nope", 404), ("/org/repo/blob/main/nope.txt", 404),
                         ("/org/repo/commits/nope", 404), ("/org/repo/tree/main/a/%2e%2e/b", 400)):
        response = client.get(path)
        assert response.status_code == status and response.headers["content-type"].startswith("text/html"), path
    assert client.head("/org/repo").status_code == 200


def test_api_and_downloads_keep_their_routes(app, client):
    se_repo(app.state.registry.store, "org/m")
    assert client.get("/api/models").json()[0]["id"] == "org/m"
    assert client.get("/api/nothing/here").headers["content-type"] == "application/json"
    assert client.get("/org/m/resolve/main/config.json", follow_redirects=True).json()["architecture"] == \
        "se_zoo_resnet18"
    assert client.get("/-/style.css").headers["content-type"].startswith("text/css")
    assert client.get("/datasets/a/b").status_code == 400


RICH_CARD = """# Rich card

| left | centre | right |
|:-----|:------:|------:|
| a    | b      | 1.5   |

- [x] trained
- [ ] exported

Measured once[^run].

```python
def top1(x):  # best
    return "ok"
```

![architecture](assets/arch.png) [the config](config.json) [up](../notes.md#usage) [here](#usage) [docs](docs/)
<img src="docs/plot.png" alt="plot"> ![remote](https://images.example/remote.png)

[^run]: On digits.
"""


def test_card_markdown_resolves_links_at_the_revision_shown(app, client):
    store = app.state.registry.store
    store.create_repo("demo", "r18", False)
    first = commit(store, "demo/r18", {"README.md": RICH_CARD.encode(), "docs/guide.md": b"![fig](img/f.png)\n"})
    store.set_ref("demo", "r18", "tags", "v1", first, must_exist=False)
    pages = {"/demo/r18": "main", "/demo/r18/tree/main": "main", "/demo/r18/tree/v1": "v1",
             "/demo/r18/blob/v1/README.md": "v1"}
    for path, rev in pages.items():
        html = client.get(path).text
        assert f'<img src="/demo/r18/resolve/{rev}/assets/arch.png" alt="architecture">' in html, path
        assert f'<img src="/demo/r18/resolve/{rev}/docs/plot.png" alt="plot">' in html, path  # raw HTML too
        assert f'href="/demo/r18/blob/{rev}/config.json"' in html and f'href="/demo/r18/blob/{rev}/notes.md#usage"' \
            in html, path
        assert f'href="/demo/r18/tree/{rev}/docs"' in html, path  # a folder: its listing
        assert 'href="#user-content-usage"' in html, path  # a card's anchors cannot reach the page's own ids
        assert "1 image(s) from other sites not shown" in html, path
        assert '<img src="https://images.example/remote.png"' in html and "img-src 'self' data:" in CSP
    guide = client.get("/demo/r18/blob/main/docs/guide.md").text
    assert '<img src="/demo/r18/resolve/main/docs/img/f.png" alt="fig">' in guide  # relative to the file's folder
    assert "from other sites" not in guide
    card = client.get("/demo/r18").text
    assert '<th align="left" scope="col">left</th>' in card and '<td align="right">1.5</td>' in card
    assert '<span class="task done" role="img" aria-label="done">☑</span> trained' in card
    assert '<span class="task" role="img" aria-label="to do">☐</span> exported' in card
    assert '<span class="k">def</span>' in card and '<span class="c1"># best</span>' in card
    assert 'href="#user-content-fn1"' in card and 'id="user-content-fn1"' in card and "On digits." in card
    body = card[card.index('id="card"'):]
    assert "<input" not in body and "style=" not in body


def test_pathological_cards_are_cut_with_a_note(app, client):
    store = app.state.registry.store
    store.create_repo("evil", "big", False)
    table = ("|" + "|".join(f"h{i}" for i in range(150)) + "|\n|" + "---|" * 150 + "\n" +
             ("|" + "|".join("c" for _ in range(150)) + "|\n") * (MAX_CARD_TABLE_ROWS + 60))
    commit(store, "evil/big", {"README.md": ("# Big\n\n" + "w" * 820_000 + "\n\n" + table).encode()})
    html = client.get("/evil/big").text
    notes = re.findall(r'<p class="card-note" role="note">([^<]+)</p>', html)
    assert notes == [f"1 line(s) longer than {MAX_CARD_LINE_CHARS:,} characters were cut.",
                     f"A table was cut to {MAX_CARD_TABLE_ROWS:,} rows (60 not shown).",
                     f"A table was cut to {MAX_CARD_TABLE_COLUMNS} columns."]
    assert "w" * MAX_CARD_LINE_CHARS + "…" in html and "w" * (MAX_CARD_LINE_CHARS + 1) not in html
    assert html.count("<tr>") == MAX_CARD_TABLE_ROWS + 1
    header = html[html.index("<thead>"):html.index("</thead>")]
    assert header.count("<th ") == MAX_CARD_TABLE_COLUMNS


def test_unknown_pages_favicon_and_compression(app, client):
    se_repo(app.state.registry.store, "demo/r18")
    for path in ("/demo/r18/discussions", "/demo/r18/settings/x", "/nothing-here", "/demo/r18/commit/abc"):
        response = client.get(path)
        assert response.status_code == 404 and response.headers["content-type"].startswith("text/html"), path
        assert response.headers["content-security-policy"] == CSP and 'id="error-message"' in response.text
    assert client.get("/api/nothing/here").headers["content-type"] == "application/json"  # the API stays JSON
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml" and b"<svg" in icon.content
    assert 'rel="icon" href="/favicon.ico"' in client.get("/").text
    for path in ("/demo/r18", "/-/style.css", "/"):
        response = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert response.headers["content-encoding"] == "gzip" and response.headers["vary"] == "Accept-Encoding", path
        assert "content-encoding" not in client.get(path, headers={"Accept-Encoding": "identity"}).headers
    data = b"x" * 100_000  # a download keeps the file's bytes and length whatever the client accepts
    commit(app.state.registry.store, "demo/r18", {"big.txt": data})
    download = client.get("/demo/r18/resolve/main/big.txt", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in download.headers and download.headers["content-length"] == str(len(data))


def test_metrics_parsing_skips_what_is_not_a_number():
    data = b'{"epoch": 1, "top1": 10, "train_loss": 2}\n\xff\n{"epoch": 2, "top1": NaN, "train_loss": true}\n' \
           b'{"epoch": 2, "top1": 30}\n"text"\n{"top1": 20}\n'
    assert parse_metrics(data) == {1.0: {"epoch": 1.0, "top1": 10.0, "train_loss": 2.0},
                                   2.0: {"epoch": 2.0, "top1": 30.0}, 6.0: {"top1": 20.0}}
    (accuracy,) = [p for p in curves(data) if p.title.startswith("Accuracy")]
    (series,) = accuracy.series
    ys = [float(point.split(",")[1]) for point in series.points.split()]
    assert ys[0] > ys[2] > ys[1]  # SVG y grows downwards: 10% lowest, 30% highest
    assert curves(b"") == [] and curves(b"[]\n") == []


@pytest.mark.slow
def test_quickstart_serve_keeps_the_registry_up(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    log = tmp_path / "quickstart.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("HF_ENDPOINT", None)
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "se_zoo.cli", "quickstart", "--serve", "--epochs", "1",
                                    "--finetune-epochs", "1"], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 900
        while "Press Ctrl-C to stop." not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(1)
        urls = re.findall(r"^  (http://\S+/quickstart/se-resnet18-digits\S*)$", log.read_text(), re.M)
        assert len(urls) == 2
        with urllib.request.urlopen(urls[1]) as response:
            page = response.read().decode()
        assert 'id="curves"' in page and 'id="metrics"' in page
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()


def test_the_pages_keep_the_registry_torch_free():
    import subprocess
    import sys

    code = ("import sys, se_zoo.registry.app, se_zoo.registry.web; "
            "print(sorted(m for m in ('torch', 'timm', 'se_zoo.hub', 'se_zoo.models') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _rows(html):
    return re.findall(r'class="model-id" href="/([^"]+)"', html)


def test_commit_page_shows_message_parent_and_text_and_tensor_diffs(app, client):
    store = app.state.registry.store
    store.create_repo("org", "net", False)
    first = commit(store, "org/net", {
        "model.safetensors": safetensors_bytes({
            "same": ("F32", (2,), f32(1, 2)), "tuned": ("F32", (2, 2), f32(1, 2, 3, 4)),
            "grown": ("F32", (2,), f32(0, 0)), "cast": ("F32", (3,), f32(0.5, 1, 2)),
            "dropped": ("I64", (1,), struct.pack("<q", 7)), "odd": ("F32", (2,), f32(1, math.inf))},
            {"format": "pt"}),
        "notes.txt": b"alpha\nbeta\ngamma\n"}, title="First weights")
    second = commit(store, "org/net", {
        "model.safetensors": safetensors_bytes({
            "same": ("F32", (2,), f32(1, 2)), "tuned": ("F32", (2, 2), f32(1, 2.5, 3, -6)),
            "grown": ("F32", (3,), f32(0, 0, 0)), "cast": ("F16", (3,), struct.pack("<3e", 0.5, 1, 2.25)),
            "fresh": ("BF16", (2,), f32(1, 2)[2:4] + f32(1, 2)[6:8]), "odd": ("F32", (2,), f32(1, math.nan))},
            {"format": "pt", "epoch": "3"}),
        "notes.txt": b"alpha\nBETA\ngamma\n", "big.txt": b"x\n" * 200_000},
        title="Fine-tune", message="Second line of the message.\n\nThird paragraph <b>kept as text</b>.")
    page = client.get(f"/org/net/commit/{second}")
    assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
    text = page_text(page.text)
    assert "Fine-tune" in text and "Third paragraph <b>kept as text</b>" in text
    assert "Second line of the message.\n\nThird" in re.search(r'id="commit-message">([^<]*)<', page.text).group(1)
    assert f'href="/org/net/commit/{first}" id="parent-link"' in page.text
    assert re.search(r'<span class="del">-beta</span>\s*<span class="add">\+BETA</span>', page.text)
    assert "Only the first 256 KiB of each side are compared" in text  # big.txt (400 kB) is cut...
    assert "The diff is cut after 2000 lines." in text  # ...and its diff too
    rows = {m[0]: m[1:] for m in re.findall(
        r"<tr class=\"[^\"]+\"><td><code>([^<]+)</code></td><td>([^<]+)</td>\s*<td>([^<]+)</td>\s*<td>([^<]+)</td>\s*"
        r"<td class=\"num\">([^<]*)", page.text)}
    assert rows == {"cast": ("dtype changed", "F32 → F16", "[3]", "0.25"), "dropped": ("removed", "I64", "[1]", ""),
                    "fresh": ("added", "BF16", "[2]", ""), "grown": ("reshaped", "F32", "[2] → [3]", ""),
                    "odd": ("changed", "F32", "[2]", "NaN"), "tuned": ("changed", "F32", "[2, 2]", "10")}
    assert "1 unchanged" in text and "epoch" in text  # "same" is unchanged; the metadata change is listed
    history = client.get("/org/net/commits/main").text
    assert f'href="/org/net/commit/{second}"' in history and f'href="/org/net/commit/{first}"' in history
    root = page_text(client.get(f"/org/net/commit/{first}").text)
    assert "First weights" in root and "6 added" in root and "notes.txt" in root
    initial = store.commit_info("org", "net", first)["parents"][0]
    assert "none (the first commit)" in page_text(client.get(f"/org/net/commit/{initial}").text)
    for path in ("/org/net/commit/" + "0" * 40, "/org/net/commit/nope"):
        missing = client.get(path)
        assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html"), path


def test_tensor_diff_reads_bounded_chunks(tmp_path):
    import tracemalloc

    from se_zoo.registry.web.tensors import compare

    n = 4 * 1024 * 1024  # 16 MiB of float32 per file
    old, new = tmp_path / "old.safetensors", tmp_path / "new.safetensors"
    values = bytearray(f32(0.25) * n)
    old.write_bytes(safetensors_bytes({"w": ("F32", (n,), bytes(values))}))
    values[-4:] = f32(-1.75)
    new.write_bytes(safetensors_bytes({"w": ("F32", (n,), bytes(values))}))
    del values
    tracemalloc.start()
    diff = compare(old, new)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    (change,) = diff.changes
    assert change.change == "changed" and change.max_change == 2.0 and diff.bytes_read == 32 * 1024 * 1024
    assert peak < 12 * 1024 * 1024, peak  # a few 1 MiB chunks and their decoded values, not the 32 MiB read
    cut = compare(old, new, budget=1024)
    assert cut.cut and cut.changes[0].max_change is None and "budget" in cut.changes[0].note


def test_safetensors_viewer_text_lines_raw_link_and_model_sidebar(app, client):
    store = app.state.registry.store
    store.create_repo("org", "viewer", False)
    weights = safetensors_bytes({"conv.weight": ("F32", (4, 3, 2, 2), f32(*range(48))),
                                 "fc.bias": ("BF16", (10,), bytes(20))}, {"format": "pt", "note": "<i>x</i>"})
    long_text = "".join(f"line {i}\n" for i in range(1, 40_001)).encode()  # 400 kB: over the 256 KiB shown
    commit(store, "org/viewer", {"model.safetensors": weights, "config.json": b'{"architecture": "a"}',
                                 "log.txt": long_text, "broken.safetensors": b"\0\0\0\0"})
    page = client.get("/org/viewer/blob/main/model.safetensors").text
    text = page_text(page)
    assert "conv.weight F32 [4, 3, 2, 2] 48" in text and "fc.bias BF16 [10] 10" in text
    assert re.search(r'id="tensor-params">58<', page)
    assert 'id="tensor-dtypes">F32 <span class="muted">(48)</span>, BF16 <span class="muted">(10)' in page
    assert "&lt;i&gt;x&lt;/i&gt;" in page and "Binary" not in text and 'id="raw-link"' not in page
    assert "cannot be read" in page_text(client.get("/org/viewer/blob/main/broken.safetensors").text)
    log = client.get("/org/viewer/blob/main/log.txt").text
    assert 'id="L1"' in log and 'data-line="3"' in log and "line 3" in log
    assert "Showing the first 256 KiB" in page_text(log) and "line 40000" not in log
    raw = client.get(re.search(r'id="raw-link" href="([^"]+)"', log).group(1))
    assert raw.status_code == 200 and raw.content == long_text and raw.headers["content-type"].startswith("text/plain")
    assert "sandbox" in raw.headers["content-security-policy"]
    assert 'id="weights-params"' not in client.get("/org/viewer").text  # an unreadable file: no wrong total
    commit(store, "org/viewer", {}, deleted=("broken.safetensors",))
    sidebar = page_text(client.get("/org/viewer").text)
    assert f"Parameters 58 Weights {len(weights)} bytes Dtype F32, BF16" in sidebar


def test_search_matches_architecture_tags_and_title_with_faceted_counts_pages_and_top1(app, client):
    store = app.state.registry.store
    for i in range(40):
        se_repo(store, f"zoo/net-{i:02d}", top1=60 + i / 2, architecture="se_zoo_resnet18" if i % 2 else "se_zoo_x")
    store.create_repo("other", "plain", False)
    commit(store, "other/plain", {"README.md": b"---\nlibrary_name: transformers\ntags: [nlp, se-zoo]\n---\n"
                                                b"# Tokenizer Notes\n"})
    assert len(re.findall(r'class="model-id"', client.get("/?search=resnet").text)) == 20
    assert 'id="total">20<' in client.get("/?search=resnet").text
    assert _rows(client.get("/?search=tokenizer+notes").text) == ["other/plain"]  # the card title, every word
    assert _rows(client.get("/?search=nlp").text) == ["other/plain"]  # a tag
    assert _rows(client.get("/?search=resnet+nlp").text) == []
    timm = client.get("/?library=timm").text
    tags = dict(re.findall(r'href="\?[^"]*tag=([^"&]+)[^"]*">[^<]+<span class="muted">(\d+)</span>', timm))
    assert tags["se-zoo"] == "40" and "nlp" not in tags  # tag counts follow the library filter
    libraries = dict(re.findall(r'library=([a-z]+)[^"]*"[^>]*>[a-z]+</a> <span class="muted">(\d+)<',
                                client.get("/?tag=se-zoo").text))
    assert libraries == {"timm": "40", "transformers": "1"}
    assert dict(re.findall(r'library=([a-z]+)[^"]*"[^>]*>[a-z]+</a> <span class="muted">(\d+)<',
                           client.get("/?tag=nlp").text)) == {"transformers": "1"}
    ranked = _rows(client.get("/?sort=top1").text)
    assert ranked[:3] == ["zoo/net-39", "zoo/net-38", "zoo/net-37"]
    assert _rows(client.get("/?sort=top1&p=1").text)[-1] == "other/plain"  # no top-1: last
    pager = client.get("/?sort=top1").text
    assert re.findall(r'id="page-numbers">(.*?)</span>\s*<span class="muted">', pager, re.S)
    assert 'aria-current="page">1<' in pager and ">2</a>" in pager
    assert "sort=top1" not in client.get("/?search=tokenizer").text  # no metrics among the results: no top-1 sort


def test_use_this_model_token_untrained_badge_copy_script_and_downloads(app, client):
    store = app.state.registry.store
    se_repo(store, "zoo/public")
    se_repo(store, "zoo/private", private=True)
    store.create_repo("zoo", "fresh", False)
    commit(store, "zoo/fresh", {"config.json": json.dumps({"architecture": "se_zoo_resnet18", "weights_origin": {
        "kind": "hub", "repo_id": "a/b", "previous": {"kind": "random_init"}}}).encode(),
        "model.safetensors": safetensors_bytes({"w": ("F32", (1,), f32(0))})})
    public = client.get("/zoo/public").text
    assert "HF_TOKEN" not in public and 'id="untrained-badge"' not in public and "pretrained=True" in public
    assert '<script src="/-/copy.js" defer></script>' in public and public.count('data-copy="') == 4
    client.cookies.set("se_zoo_token", READ)
    private = page_text(client.get("/zoo/private").text)
    assert "export HF_TOKEN=hf_your_read_token" in private
    fresh = client.get("/zoo/fresh").text
    assert 'id="untrained-badge"' in fresh and "pretrained=False" in fresh and "random initialization" in fresh
    script = client.get("/-/copy.js")
    assert script.headers["content-type"].startswith("text/javascript") and b"clipboard" in script.content
    for _ in range(3):
        assert client.get("/zoo/public/resolve/main/model.safetensors").status_code == 200
    client.get("/zoo/public/resolve/main/config.json")  # not a weights file: not counted
    assert re.search(r'id="downloads">3<', client.get("/zoo/public").text)


def test_download_counts_add_up_across_processes(tmp_path):
    import subprocess
    import sys

    from se_zoo.registry.store.storage import Store

    store = Store(tmp_path)
    store.create_repo("a", "b", False)
    (store.root / "repos" / "a" / "b" / "downloads.json").write_text('{"downloads": 5}')  # an older root's count
    code = ("import sys; from se_zoo.registry.store.storage import Store; s = Store(sys.argv[1]); "
            "[s.count_download('a', 'b') for _ in range(300)]; s.close()")
    workers = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)]) for _ in range(3)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0]
    assert store.downloads("a", "b") == 905 and store.downloads("A", "B") == 905


def test_the_commit_url_the_client_prints_opens_the_commit_page(hub_server):
    from huggingface_hub import HfApi

    api, repo_id = HfApi(), f"{hub_server.namespace}/pushed"
    api.create_repo(repo_id)
    info = api.upload_file(path_or_fileobj=b"epoch 1\nepoch 2\n", path_in_repo="log.txt", repo_id=repo_id,
                           commit_message="Add the log", commit_description="Two epochs.\nSecond line.")
    assert info.commit_url == f"{hub_server.endpoint}/{repo_id}/commit/{info.oid}"
    with urllib.request.urlopen(info.commit_url) as response:
        page = response.read().decode()
    assert "Add the log" in page and "Two epochs.\nSecond line." in page and '<span class="add">+epoch 2</span>' in page
