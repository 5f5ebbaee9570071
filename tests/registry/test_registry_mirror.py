"""Air-gapped use: pull-through mirror, ``se-zoo hub mirror`` and bundles, between two loopback registries.

Repos here hold plain bytes; nothing here reaches the internet or needs torch. The loads of timm-shaped
weights through a mirror and a bundle are in ``tests/hub/test_hub_mirror.py``.
"""
import hashlib
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import HfHubHTTPError

from helpers.hub import READ_TOKEN, WRITE_TOKEN, point_client_at
from helpers.mirror import serve, tree_of

from se_zoo.registry.mirror.bundle import BundleError, BundleWriter, import_bundle
from se_zoo.registry.errors import RemoteRefused
from se_zoo.registry.mirror.transfer import RegistrySink, StoreSink, mirror_repos
from se_zoo.registry.mirror.upstream import Upstream
from se_zoo.registry.store.integrity import BlobIntegrity, file_key

MiB = 1024 * 1024


def _sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _big_repo(root: Path, tmp_path: Path, size: int, name: str = "big") -> tuple:
    """Seed ``org/<name>`` holding ``big.bin`` of ``size`` random bytes; returns (repo_id, bytes)."""
    data = os.urandom(size)
    with serve(root) as server, pytest.MonkeyPatch.context() as patch:
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
    with serve(tmp_path / "up", spy=spy) as upstream, \
            serve(tmp_path / "down", upstream=upstream.endpoint) as downstream:
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
    # silent bit rot, which leaves the file's metadata alone: the upstream believes its blob verified
    monkeypatch.setattr(BlobIntegrity, "status", lambda self, sha256, path: (file_key(path), True))
    with serve(tmp_path / "up") as upstream, serve(tmp_path / "down", upstream=upstream.endpoint) as downstream:
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
    with serve(tmp_path / "up", spy=spy) as upstream, \
            serve(tmp_path / "down", upstream=upstream.endpoint) as downstream:
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


def test_truncated_bundle_is_refused_and_target_unchanged(tmp_path):
    repo_id, data = _big_repo(tmp_path / "up", tmp_path, 2 * MiB, name="small")
    bundle = tmp_path / "b.bundle"
    with serve(tmp_path / "up") as upstream:
        source = Upstream(upstream.endpoint)
        writer = BundleWriter(bundle)
        mirror_repos(source, writer, [(repo_id, "main")], log=lambda _: None)
        writer.close()
    target = tmp_path / "target"
    StoreSink(target)  # an empty registry root
    before = tree_of(target)
    whole = bundle.read_bytes()
    for cut in (len(whole) - 1024, len(whole) // 2, 700):
        bundle.write_bytes(whole[:cut])
        with pytest.raises(BundleError, match="truncated"):
            import_bundle(bundle, StoreSink(target), log=lambda _: None)
        assert tree_of(target) == before
    # a cut-short bundle is resumed: the complete blobs are kept, the rest copied again
    bundle.write_bytes(whole[: len(whole) // 2])
    with serve(tmp_path / "up") as upstream:
        writer = BundleWriter(bundle)
        stats = mirror_repos(Upstream(upstream.endpoint), writer, [(repo_id, "main")], log=lambda _: None)
        writer.close()
    assert stats.bytes < len(data) + 100 or stats.present > 0
    stats = import_bundle(bundle, StoreSink(target), log=lambda _: None)
    assert stats.files == 2
    with serve(target) as served:
        assert httpx2.get(f"{served.endpoint}/{repo_id}/resolve/main/big.bin", follow_redirects=True).content == data


def test_corrupted_bundle_blob_is_refused_before_any_commit(tmp_path):
    repo_id, data = _big_repo(tmp_path / "up", tmp_path, 1 * MiB, name="small")
    bundle = tmp_path / "b.bundle"
    with serve(tmp_path / "up") as upstream:
        writer = BundleWriter(bundle)
        mirror_repos(Upstream(upstream.endpoint), writer, [(repo_id, "main")], log=lambda _: None)
        writer.close()
    raw = bytearray(bundle.read_bytes())
    raw[raw.find(data[:64]) + 100] ^= 0xFF
    bundle.write_bytes(bytes(raw))
    sha = hashlib.sha256(data).hexdigest()
    with pytest.raises(BundleError, match=f"member blobs/{sha} .*big.bin.* sha256 mismatch"):
        import_bundle(bundle, StoreSink(tmp_path / "target"), log=lambda _: None)
    assert not list((tmp_path / "target" / "repos").iterdir())
    done = subprocess.run([sys.executable, "-m", "se_zoo.registry", "import", str(bundle), "--to-root",
                           str(tmp_path / "target")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    error = done.stderr.strip().splitlines()
    assert len(error) == 1 and f"member blobs/{sha}" in error[0] and "sha256 mismatch" in error[0], done.stderr


def test_mirror_into_running_registry_keeps_commit_ids_and_private_repos_need_a_token(tmp_path):
    repo_id, data = _big_repo(tmp_path / "up", tmp_path, 1 * MiB, name="secret")
    with serve(tmp_path / "up") as upstream:
        HfApi(endpoint=upstream.endpoint, token=WRITE_TOKEN).update_repo_settings(repo_id, private=True)
        up_commit = Upstream(upstream.endpoint, WRITE_TOKEN).refs(repo_id)["branches"]["main"]
        with serve(tmp_path / "iso") as iso:
            sink = RegistrySink(iso.endpoint, WRITE_TOKEN)
            mirror_repos(Upstream(upstream.endpoint, WRITE_TOKEN), sink, [(repo_id, "main")], log=lambda _: None)
            assert httpx2.get(f"{iso.endpoint}/api/models/{repo_id}").status_code == 404
            info = httpx2.get(f"{iso.endpoint}/api/models/{repo_id}",
                              headers={"Authorization": f"Bearer {READ_TOKEN}"}).json()
            assert info["sha"] == up_commit and info["private"] is True
            with pytest.raises(RemoteRefused, match="read-only"):
                RegistrySink(iso.endpoint, READ_TOKEN).adopt(repo_id, None, up_commit, {}, True, "x")
        # pull-through: a private upstream repo only for callers holding a token of the registry
        with serve(tmp_path / "pt", upstream=upstream.endpoint) as pt:
            url = f"{pt.endpoint}/{repo_id}/resolve/main/big.bin"
            assert httpx2.get(url, follow_redirects=True).status_code == 404
            assert not (tmp_path / "pt" / "repos" / "org").exists()
            authed = httpx2.get(url, follow_redirects=True, headers={"Authorization": f"Bearer {READ_TOKEN}"})
            assert authed.status_code == 200 and authed.content == data
            assert httpx2.get(url, follow_redirects=True).status_code == 404


def test_local_repos_take_precedence_and_names_follow_the_upstream(tmp_path, monkeypatch):
    repo_id, data = _big_repo(tmp_path / "up", tmp_path, 1 * MiB, name="m")
    with serve(tmp_path / "up") as upstream, serve(tmp_path / "down", upstream=upstream.endpoint, ttl=0) as down:
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
    code = ("import sys, se_zoo.registry.mirror.cli, se_zoo.registry.mirror.transfer, se_zoo.registry.mirror.bundle, "
            "se_zoo.registry.mirror.catalog, se_zoo.registry.app; "
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
    with serve(tmp_path / "up") as upstream:
        source = Upstream(upstream.endpoint)
        with pytest.raises(KeyboardInterrupt):  # r1 copied, then the copy died inside r2
            mirror_repos(source, _FailingSink(target, allowed=2), [(first, "main"), (second, "main")], log=print)
        stats = mirror_repos(source, StoreSink(target), [(first, "main"), (second, "main")], log=print)
        assert (stats.files, stats.present, stats.commits) == (1, 1, 1)  # only r2's missing file moved
        assert mirror_repos(source, StoreSink(target), [(first, "main"), (second, "main")], log=print).bytes == 0
    with serve(target) as served:
        for repo_id, data in ((first, data1), (second, data2)):
            url = f"{served.endpoint}/{repo_id}/resolve/main/big.bin"
            assert httpx2.get(url, follow_redirects=True).content == data


def test_with_the_upstream_stopped_what_was_never_fetched_answers_504(tmp_path, monkeypatch):
    """docs/air-gapped.md: stored files are served, something never fetched gets a 504 (every route)."""
    repo_id, data = _big_repo(tmp_path / "up", tmp_path, 11 * MiB)
    upstream = serve(tmp_path / "up")
    with serve(tmp_path / "down", upstream=upstream.endpoint, ttl=0) as downstream:
        commit = httpx2.get(f"{downstream.endpoint}/api/models/{repo_id}").json()["sha"]  # metadata only
        upstream.stop()
        uncached = f"{downstream.endpoint}/{repo_id}/resolve/{commit}/big.bin"
        for _ in range(2):  # the first answer, and the remembered failure a retry gets
            response = httpx2.get(uncached)
            assert response.status_code == 504 and "unreachable" in response.json()["error"]
        for path in ("/api/models/org/never-seen", "/org/never-seen/resolve/main/x"):
            assert httpx2.get(downstream.endpoint + path).status_code == 504
        assert httpx2.get(f"{downstream.endpoint}/{repo_id}/resolve/{commit}/config.json").content == b'{"x": 1}\n'
        point_client_at(monkeypatch, downstream.endpoint, None, tmp_path / "hf_home")
        with pytest.raises(HfHubHTTPError, match="504"):
            hf_hub_download(repo_id, "big.bin")
