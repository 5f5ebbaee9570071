"""Air-gapped use: pull-through mirror, ``se-zoo hub mirror`` and bundles, between two loopback registries.

The "upstream" registry is seeded with repos shaped like timm's (``timm/seresnet50.*`` holding
``model.safetensors`` + ``config.json`` written by timm's ``save_for_hf``, random weights); nothing
here reaches the internet.
"""
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest
import safetensors.torch
import timm
import torch
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import HfHubHTTPError
from timm.models import save_for_hf

from helpers.hub import READ_TOKEN, WRITE_TOKEN, point_client_at

from se_zoo.models import _catalog
from se_zoo.integrity import IntegrityError
from se_zoo.registry.fsck import fsck
from se_zoo.registry.bundle import BundleError, BundleWriter, import_bundle
from se_zoo.registry.errors import RemoteRefused
from se_zoo.registry.server import HubServer
from se_zoo.registry.transfer import RegistrySink, StoreSink, mirror_repos
from se_zoo.registry.upstream import Upstream

MiB = 1024 * 1024
TAGS = {"se_zoo_resnet50.a1_in1k": "timm/seresnet50.a1_in1k", "se_zoo_resnet50.a2_in1k": "timm/seresnet50.a2_in1k",
        "se_zoo_resnet50.a3_in1k": "timm/seresnet50.a3_in1k", "se_zoo_resnet50.ra2_in1k": "timm/seresnet50.ra2_in1k"}
_RESOLVE_AT_COMMIT = re.compile(r"/resolve/[0-9a-f]{40}/")


class UpstreamSpy:
    """ASGI middleware on the upstream: counts file transfers, can delay them and can announce Xet."""

    def __init__(self, app, state):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        transfer = scope["method"] == "GET" and _RESOLVE_AT_COMMIT.search(path)
        if transfer:
            self.state["transfers"].append(path)
            time.sleep(0)  # keep the event loop fair
            if self.state.get("delay"):
                import anyio
                await anyio.sleep(self.state["delay"])
        if not self.state.get("xet"):
            return await self.app(scope, receive, send)
        return await self.app(scope, receive, _XetAnnouncer(send, path, scope).send)


class _XetAnnouncer:
    """Adds what the client reacts to for Xet: ``X-Xet-Hash`` + refresh route headers, ``xetHash`` fields."""

    def __init__(self, send, path, scope):
        self._send, self._path = send, path
        self._json = path.startswith("/api/models/")
        self._body = b""
        self._start = None
        host = dict(scope["headers"]).get(b"host", b"").decode()
        self._refresh = f"http://{host}/api/models/x/y/xet-read-token/main"

    async def send(self, message):
        if message["type"] == "http.response.start":
            headers = list(message["headers"])
            if "/resolve/" in self._path:
                headers += [(b"x-xet-hash", b"a" * 64), (b"x-xet-refresh-route", self._refresh.encode()),
                            (b"link", f'<{self._refresh}>; rel="xet-auth"'.encode())]
            message = {**message, "headers": headers}
            if self._json:
                self._start = message
                return
            return await self._send(message)
        if not self._json:
            return await self._send(message)
        self._body += message.get("body", b"")
        if message.get("more_body"):
            return
        body = self._body
        try:
            data = json.loads(body)
            for entry in data if isinstance(data, list) else data.get("siblings", []):
                if isinstance(entry, dict) and ("lfs" in entry or entry.get("type") == "file"):
                    entry["xetHash"] = "b" * 64
            body = json.dumps(data).encode()
        except ValueError:
            pass
        headers = [(k, v) for k, v in self._start["headers"] if k.lower() != b"content-length"]
        await self._send({**self._start, "headers": headers + [(b"content-length", str(len(body)).encode())]})
        await self._send({"type": "http.response.body", "body": body})


def _serve(root: Path, upstream: str = None, spy: dict = None, **kwargs) -> HubServer:
    up = Upstream(upstream, WRITE_TOKEN, ttl=kwargs.pop("ttl", 60.0)) if upstream else None
    server = HubServer(root, {WRITE_TOKEN: "write", READ_TOKEN: "read"}, upstream=up, **kwargs)
    if spy is not None:
        spy.setdefault("transfers", [])
        server.app.add_middleware(UpstreamSpy, state=spy)
    return server.start()


def _sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def timm_root(tmp_path_factory):
    """An upstream registry root holding the four ``timm/seresnet50.*`` repos of ``se_zoo_resnet50.*``.

    a1 and a3 have weights of their own; a2 and ra2 reuse a1's file (one blob) with their own config.
    Weights are stored in bfloat16 to keep the files small; timm loads them into float32 exactly.
    """
    root = tmp_path_factory.mktemp("timm_upstream")
    work = tmp_path_factory.mktemp("timm_seed")
    server = _serve(root)
    with pytest.MonkeyPatch.context() as patch:
        point_client_at(patch, server.endpoint, WRITE_TOKEN, work / "hf_home")
        api = HfApi()
        for seed, (tag, repo_id) in enumerate(TAGS.items()):
            folder = work / repo_id.replace("/", "--")
            torch.manual_seed(seed if seed in (0, 2) else 0)
            model = timm.create_model("seresnet50").to(torch.bfloat16)
            save_for_hf(model, str(folder), model_config={"architecture": "seresnet50", "tag": tag},
                        safe_serialization=True)
            api.create_repo(repo_id)
            api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=f"weights of {tag}")
    server.stop()
    return root


def _weights(root: Path, repo_id: str) -> dict:
    """The state dict the upstream holds for ``repo_id`` (read from its store), in float32."""
    from se_zoo.registry.storage import Store

    store = Store(root)
    namespace, name = repo_id.split("/")
    entry = store.commit_info(namespace, name, store.resolve(namespace, name, "main"))["files"]["model.safetensors"]
    tensors = safetensors.torch.load(store.blob_path(entry["sha256"]).read_bytes())
    return {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}


def _assert_loads(tag: str, root: Path) -> None:
    model = timm.create_model(tag, pretrained=True)
    expected = _weights(root, TAGS[tag])
    state = model.state_dict()
    assert set(state) == set(expected)
    assert all(torch.equal(state[k], v) for k, v in expected.items()), f"{tag} did not load the upstream's weights"


def test_pull_through_loads_upstream_weights_and_keeps_working_offline(timm_root, tmp_path, monkeypatch):
    spy = {}
    upstream = _serve(timm_root, spy=spy)
    down_root = tmp_path / "down"
    downstream = _serve(down_root, upstream=upstream.endpoint)
    point_client_at(monkeypatch, downstream.endpoint, None, tmp_path / "hf_home")
    _assert_loads("se_zoo_resnet50.a1_in1k", timm_root)
    cached = next((tmp_path / "hf_home").rglob("model.safetensors"))
    up_sha = json.loads(httpx2.get(f"{upstream.endpoint}/api/models/timm/seresnet50.a1_in1k?blobs=1").text)
    lfs = next(s["lfs"]["sha256"] for s in up_sha["siblings"] if s["rfilename"] == "model.safetensors")
    assert _sha256(cached) == lfs
    # stored under the upstream's commit id, and read-only here
    api = HfApi(endpoint=downstream.endpoint, token=WRITE_TOKEN)
    assert api.model_info("timm/seresnet50.a1_in1k").sha == up_sha["sha"]
    with pytest.raises(HfHubHTTPError, match="read-only mirror"):
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="timm/seresnet50.a1_in1k")
    with pytest.raises(HfHubHTTPError, match="read-only"):
        api.create_repo("timm/another")
    transfers = [p for p in spy["transfers"] if p.endswith("/model.safetensors")]
    upstream.stop()
    downstream.stop()
    assert fsck(down_root).problems == []  # mirrored commits keep upstream ids and fetch blobs lazily

    # the upstream is gone and the registry restarts: a fresh process with a fresh cache still loads
    downstream = _serve(down_root, upstream=upstream.endpoint, ttl=0)
    code = ("import timm, torch, sys; m = timm.create_model('se_zoo_resnet50.a1_in1k', pretrained=True); "
            "torch.save(m.state_dict(), sys.argv[1])")
    env = {**os.environ, "HF_ENDPOINT": downstream.endpoint, "HF_HOME": str(tmp_path / "fresh_home"),
           "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    env.pop("HF_TOKEN", None)
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "sd.pt")], env=env, capture_output=True,
                          text=True, timeout=600)
    downstream.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    state = torch.load(tmp_path / "sd.pt")
    assert all(torch.equal(state[k], v) for k, v in _weights(timm_root, TAGS["se_zoo_resnet50.a1_in1k"]).items())
    assert len(transfers) == 1


def test_catalogue_pins_are_checked_through_the_mirror(timm_root, tmp_path, monkeypatch):
    """An unpinned tag loads (above); a pinned one loads when the pin matches and is refused otherwise."""
    tag = "se_zoo_resnet50.a3_in1k"
    with _serve(timm_root) as upstream, _serve(tmp_path / "down", upstream=upstream.endpoint) as downstream:
        point_client_at(monkeypatch, downstream.endpoint, None, tmp_path / "hf_home")
        info = httpx2.get(f"{downstream.endpoint}/api/models/{TAGS[tag]}?blobs=1").json()
        lfs = next(s["lfs"]["sha256"] for s in info["siblings"] if s["rfilename"] == "model.safetensors")
        record = dict(_catalog.find_record(tag))
        monkeypatch.setattr(_catalog, "find_record", lambda n: {**record, "sha256": "e" * 64} if n == tag else None)
        with pytest.raises(IntegrityError, match=f"catalogue pin of {tag}"):
            timm.create_model(tag, pretrained=True)
        monkeypatch.setattr(_catalog, "find_record", lambda n: {**record, "sha256": lfs} if n == tag else None)
        _assert_loads(tag, timm_root)


def _big_repo(root: Path, tmp_path: Path, size: int, name: str = "big") -> tuple:
    """Seed ``org/<name>`` holding ``big.bin`` of ``size`` random bytes; returns (repo_id, bytes)."""
    data = os.urandom(size)
    with _serve(root) as server, pytest.MonkeyPatch.context() as patch:
        point_client_at(patch, server.endpoint, WRITE_TOKEN, tmp_path / "seed_home")
        api = HfApi()
        api.create_repo(f"org/{name}")
        api.upload_file(path_or_fileobj=data, path_in_repo="big.bin", repo_id=f"org/{name}")
        api.upload_file(path_or_fileobj=b'{"x": 1}\n', path_in_repo="config.json", repo_id=f"org/{name}")
    return f"org/{name}", data


@pytest.mark.parametrize("size", [12 * MiB, pytest.param(100 * MiB, marks=pytest.mark.slow)])
def test_parallel_cold_downloads_make_one_upstream_transfer(tmp_path, size):
    repo_id, data = _big_repo(tmp_path / "up", tmp_path, size)
    spy = {"delay": 0.5}  # the first transfer starts late, so all eight requests meet it in flight
    with _serve(tmp_path / "up", spy=spy) as upstream, \
            _serve(tmp_path / "down", upstream=upstream.endpoint) as downstream:
        commit = httpx2.get(f"{downstream.endpoint}/api/models/{repo_id}").json()["sha"]
        barrier = threading.Barrier(8)

        def fetch(_):
            barrier.wait()
            with httpx2.Client(timeout=120) as client:
                response = client.get(f"{downstream.endpoint}/{repo_id}/resolve/{commit}/big.bin")
            return response.status_code, hashlib.sha256(response.content).hexdigest()

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(fetch, range(8)))
        assert results == [(200, hashlib.sha256(data).hexdigest())] * 8
        assert [p for p in spy["transfers"] if p.endswith("/big.bin")] == [f"/{repo_id}/resolve/{commit}/big.bin"]
        assert downstream.registry.mirror.flights.started == 1


def test_corrupted_upstream_bytes_are_refused_and_nothing_is_cached(tmp_path, monkeypatch):
    repo_id, data = _big_repo(tmp_path / "up", tmp_path, 11 * MiB)
    blob = next(p for p in (tmp_path / "up" / "blobs").rglob("*") if p.is_file() and p.stat().st_size == len(data))
    corrupted = bytearray(data)
    corrupted[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(corrupted))
    with _serve(tmp_path / "up") as upstream, _serve(tmp_path / "down", upstream=upstream.endpoint) as downstream:
        point_client_at(monkeypatch, downstream.endpoint, None, tmp_path / "hf_home")
        with pytest.raises(HfHubHTTPError, match="sha256 mismatch") as info:
            hf_hub_download(repo_id, "big.bin")
        assert "corrupted" in str(info.value) and hashlib.sha256(data).hexdigest() in str(info.value)
        down_blobs = [p for p in (tmp_path / "down" / "blobs").rglob("*") if p.is_file()]
        assert all(p.stat().st_size != len(data) for p in down_blobs)  # config.json only
        assert not [p for p in (tmp_path / "down" / "tmp").rglob("*") if p.is_file() and p.suffix != ".lock"]
        assert not list((tmp_path / "hf_home").rglob("big.bin"))


def test_upstream_announcing_xet_still_downloads_through_the_mirror(tmp_path, monkeypatch):
    repo_id, data = _big_repo(tmp_path / "up", tmp_path, 11 * MiB)
    spy = {"xet": True}
    with _serve(tmp_path / "up", spy=spy) as upstream, \
            _serve(tmp_path / "down", upstream=upstream.endpoint) as downstream:
        # the client (Xet is on by default) does react to what this upstream announces ...
        point_client_at(monkeypatch, upstream.endpoint, None, tmp_path / "direct_home")
        with pytest.raises(HfHubHTTPError, match="xet-read-token"):
            hf_hub_download(repo_id, "big.bin")
        head = httpx2.head(f"{upstream.endpoint}/{repo_id}/resolve/main/big.bin")
        assert head.headers.get("x-xet-hash")
        # ... and through the mirror gets plain HTTP downloads, with no Xet field or header
        point_client_at(monkeypatch, downstream.endpoint, None, tmp_path / "hf_home")
        assert Path(hf_hub_download(repo_id, "big.bin")).read_bytes() == data
        snapshot = Path(snapshot_download(repo_id, cache_dir=tmp_path / "snapshots"))  # lists the tree first
        assert (snapshot / "big.bin").read_bytes() == data and (snapshot / "config.json").exists()
        head = httpx2.head(f"{downstream.endpoint}/{repo_id}/resolve/main/big.bin")
        assert not any(k.lower().startswith("x-xet") for k in head.headers) and "xet" not in head.headers.get(
            "link", "")
        tree = httpx2.get(f"{downstream.endpoint}/api/models/{repo_id}/tree/main").text
        assert "xetHash" not in tree


def _run_cli(*args, env=None) -> str:
    # `python -m se_zoo.registry` is `se-zoo hub` without the model side's start-up time
    done = subprocess.run([sys.executable, "-m", "se_zoo.registry", *args], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **(env or {})})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _tree_of(root: Path) -> dict:
    """Every file under a registry root, without the lock files of the processes that used it."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix != ".lock"}


def _described(endpoint: str, repo_id: str) -> dict:
    """What a registry publishes of a repo's main branch: commit id, and each file's size and hashes."""
    info = httpx2.get(f"{endpoint}/api/models/{repo_id}?blobs=1").json()
    return {"sha": info["sha"], "files": sorted((s["rfilename"], s["size"], s["blobId"], s.get("lfs", {}).get("sha256"))
                                               for s in info["siblings"])}


@pytest.mark.parametrize("loaded", [("se_zoo_resnet50.a1_in1k", "se_zoo_resnet50.a3_in1k"),
                                    pytest.param(tuple(TAGS), marks=pytest.mark.slow)], ids=["distinct", "all"])
def test_mirror_and_bundle_give_the_same_loads(timm_root, tmp_path, monkeypatch, loaded):
    token_file = tmp_path / "token"
    token_file.write_text(WRITE_TOKEN)
    bundle = tmp_path / "carry" / "timm.bundle"
    with _serve(timm_root) as upstream, _serve(tmp_path / "isolated") as isolated:
        # 1. into a running registry, by catalogue pattern; a second run transfers nothing
        args = ["mirror", "--tags", "se_zoo_resnet50.*", "--from", upstream.endpoint,
                "--to", isolated.endpoint, "--to-token-file", str(token_file)]
        assert re.search(r"transferred [1-9]\d+ bytes", _run_cli(*args))
        assert "transferred 0 bytes in 0 files" in _run_cli(*args)
        # 2. into a bundle (idempotent too: the second run leaves the file untouched)
        args = ["mirror", "--tags", "se_zoo_resnet50.*", "--from", upstream.endpoint, "--bundle", str(bundle)]
        assert re.search(r"transferred [1-9]\d+ bytes", _run_cli(*args))
        mtime = bundle.stat().st_mtime_ns
        assert "transferred 0 bytes in 0 files" in _run_cli(*args)
        assert bundle.stat().st_mtime_ns == mtime
        published = {repo_id: _described(upstream.endpoint, repo_id) for repo_id in TAGS.values()}
        assert {repo_id: _described(isolated.endpoint, repo_id) for repo_id in TAGS.values()} == published
    # 3. bundle -> a fresh registry root, by disk
    imported = tmp_path / "imported"
    assert re.search(r"transferred [1-9]\d+ bytes", _run_cli("import", str(bundle), "--to-root", str(imported)))
    assert "transferred 0 bytes in 0 files" in _run_cli("import", str(bundle), "--to-root", str(imported))

    with _serve(tmp_path / "isolated") as isolated, _serve(imported) as from_bundle:
        for endpoint in (isolated.endpoint, from_bundle.endpoint):
            assert {repo_id: _described(endpoint, repo_id) for repo_id in TAGS.values()} == published
            point_client_at(monkeypatch, endpoint, None, tmp_path / f"home{endpoint.rsplit(':', 1)[1]}")
            for tag in loaded:
                _assert_loads(tag, timm_root)


def test_truncated_bundle_is_refused_and_target_unchanged(tmp_path):
    repo_id, data = _big_repo(tmp_path / "up", tmp_path, 2 * MiB, name="small")
    bundle = tmp_path / "b.bundle"
    with _serve(tmp_path / "up") as upstream:
        source = Upstream(upstream.endpoint)
        writer = BundleWriter(bundle)
        mirror_repos(source, writer, [(repo_id, "main")], log=lambda _: None)
        writer.close()
    target = tmp_path / "target"
    StoreSink(target)  # an empty registry root
    before = _tree_of(target)
    whole = bundle.read_bytes()
    for cut in (len(whole) - 1024, len(whole) // 2, 700):
        bundle.write_bytes(whole[:cut])
        with pytest.raises(BundleError, match="truncated"):
            import_bundle(bundle, StoreSink(target), log=lambda _: None)
        assert _tree_of(target) == before
    # a cut-short bundle is resumed: the complete blobs are kept, the rest copied again
    bundle.write_bytes(whole[: len(whole) // 2])
    with _serve(tmp_path / "up") as upstream:
        writer = BundleWriter(bundle)
        stats = mirror_repos(Upstream(upstream.endpoint), writer, [(repo_id, "main")], log=lambda _: None)
        writer.close()
    assert stats.bytes < len(data) + 100 or stats.present > 0
    stats = import_bundle(bundle, StoreSink(target), log=lambda _: None)
    assert stats.files == 2
    with _serve(target) as served:
        assert httpx2.get(f"{served.endpoint}/{repo_id}/resolve/main/big.bin", follow_redirects=True).content == data


def test_corrupted_bundle_blob_is_refused_before_any_commit(tmp_path):
    repo_id, data = _big_repo(tmp_path / "up", tmp_path, 1 * MiB, name="small")
    bundle = tmp_path / "b.bundle"
    with _serve(tmp_path / "up") as upstream:
        writer = BundleWriter(bundle)
        mirror_repos(Upstream(upstream.endpoint), writer, [(repo_id, "main")], log=lambda _: None)
        writer.close()
    raw = bytearray(bundle.read_bytes())
    raw[raw.find(data[:64]) + 100] ^= 0xFF
    bundle.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="sha256 mismatch"):
        import_bundle(bundle, StoreSink(tmp_path / "target"), log=lambda _: None)
    assert not list((tmp_path / "target" / "repos").iterdir())


def test_mirror_into_running_registry_keeps_commit_ids_and_private_repos_need_a_token(tmp_path):
    repo_id, data = _big_repo(tmp_path / "up", tmp_path, 1 * MiB, name="secret")
    with _serve(tmp_path / "up") as upstream:
        HfApi(endpoint=upstream.endpoint, token=WRITE_TOKEN).update_repo_settings(repo_id, private=True)
        up_commit = Upstream(upstream.endpoint, WRITE_TOKEN).refs(repo_id)["branches"]["main"]
        with _serve(tmp_path / "iso") as iso:
            sink = RegistrySink(iso.endpoint, WRITE_TOKEN)
            mirror_repos(Upstream(upstream.endpoint, WRITE_TOKEN), sink, [(repo_id, "main")], log=lambda _: None)
            assert httpx2.get(f"{iso.endpoint}/api/models/{repo_id}").status_code == 404
            info = httpx2.get(f"{iso.endpoint}/api/models/{repo_id}",
                              headers={"Authorization": f"Bearer {READ_TOKEN}"}).json()
            assert info["sha"] == up_commit and info["private"] is True
            with pytest.raises(RemoteRefused, match="read-only"):
                RegistrySink(iso.endpoint, READ_TOKEN).adopt(repo_id, None, up_commit, {}, True, "x")
        # pull-through: a private upstream repo only for callers holding a token of the registry
        with _serve(tmp_path / "pt", upstream=upstream.endpoint) as pt:
            url = f"{pt.endpoint}/{repo_id}/resolve/main/big.bin"
            assert httpx2.get(url, follow_redirects=True).status_code == 404
            assert not (tmp_path / "pt" / "repos" / "org").exists()
            authed = httpx2.get(url, follow_redirects=True, headers={"Authorization": f"Bearer {READ_TOKEN}"})
            assert authed.status_code == 200 and authed.content == data
            assert httpx2.get(url, follow_redirects=True).status_code == 404


def test_local_repos_take_precedence_and_names_follow_the_upstream(tmp_path, monkeypatch):
    repo_id, data = _big_repo(tmp_path / "up", tmp_path, 1 * MiB, name="m")
    with _serve(tmp_path / "up") as upstream, _serve(tmp_path / "down", upstream=upstream.endpoint, ttl=0) as down:
        point_client_at(monkeypatch, down.endpoint, WRITE_TOKEN, tmp_path / "hf_home")
        api = HfApi()
        api.create_repo("local/m")
        api.upload_file(path_or_fileobj=b"mine", path_in_repo="big.bin", repo_id="local/m")
        assert Path(hf_hub_download("local/m", "big.bin")).read_bytes() == b"mine"
        first = api.model_info(repo_id).sha
        up_api = HfApi(endpoint=upstream.endpoint, token=WRITE_TOKEN)
        up_api.upload_file(path_or_fileobj=b"v2", path_in_repo="big.bin", repo_id=repo_id)
        up_api.create_tag(repo_id, tag="v1", revision=first)
        assert api.model_info(repo_id).sha != first  # ttl=0: the branch is checked upstream each time
        assert Path(hf_hub_download(repo_id, "big.bin")).read_bytes() == b"v2"
        assert Path(hf_hub_download(repo_id, "big.bin", revision="v1")).read_bytes() == data
        with pytest.raises(Exception, match="not found"):
            hf_hub_download(repo_id, "big.bin", revision="nope")


def test_mirror_modules_stay_torch_free():
    code = ("import sys, se_zoo.registry.mirror_cli, se_zoo.registry.transfer, se_zoo.registry.bundle, "
            "se_zoo.registry.catalog, se_zoo.registry.server; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'timm') "
            "or m.startswith('se_zoo.models')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.stdout.strip() == "[]"


def test_bad_arguments_get_clear_errors(tmp_path):
    def fails(*args):
        done = subprocess.run([sys.executable, "-m", "se_zoo.registry", *args], capture_output=True, text=True,
                              timeout=120, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        assert done.returncode != 0
        return done.stderr

    assert "matches no catalogue tag" in fails("mirror", "--tags", "nope.*", "--to-root", str(tmp_path / "r"))
    assert "does not exist" in fails("import", str(tmp_path / "missing.bundle"), "--to-root", str(tmp_path / "r"))
    empty = tmp_path / "empty.token"
    empty.write_text("")
    assert "is empty" in fails("serve", "--root", str(tmp_path / "r"), "--upstream", "http://127.0.0.1:9",
                               "--upstream-token-file", str(empty))
    assert "expected an http" in fails("serve", "--root", str(tmp_path / "r"), "--upstream", "ftp://x")


class _FailingSink(StoreSink):
    """A registry root whose copy is cut off after ``allowed`` blobs, as by a killed process."""

    def __init__(self, root, allowed):
        super().__init__(root)
        self.allowed = allowed

    def put_blob(self, sha256, size, chunks):
        if self.allowed == 0:
            raise KeyboardInterrupt
        self.allowed -= 1
        super().put_blob(sha256, size, chunks)


def test_interrupted_mirror_resumes_without_copying_again(tmp_path):
    (first, data1), (second, data2) = (_big_repo(tmp_path / "up", tmp_path, MiB // 2, name=n) for n in ("r1", "r2"))
    target = tmp_path / "target"
    with _serve(tmp_path / "up") as upstream:
        source = Upstream(upstream.endpoint)
        with pytest.raises(KeyboardInterrupt):  # r1 copied, then the copy died inside r2
            mirror_repos(source, _FailingSink(target, allowed=2), [(first, "main"), (second, "main")], log=print)
        stats = mirror_repos(source, StoreSink(target), [(first, "main"), (second, "main")], log=print)
        assert (stats.files, stats.present, stats.commits) == (1, 1, 1)  # only r2's missing file moved
        assert mirror_repos(source, StoreSink(target), [(first, "main"), (second, "main")], log=print).bytes == 0
    with _serve(target) as served:
        for repo_id, data in ((first, data1), (second, data2)):
            url = f"{served.endpoint}/{repo_id}/resolve/main/big.bin"
            assert httpx2.get(url, follow_redirects=True).content == data
