"""Uploads with the client's defaults: the registry speaks Xet to the unmodified huggingface_hub + hf_xet.

The hashing, xorb and shard code is checked against what the real client sends (every upload here
goes through hf_xet, and the registry refuses anything whose hashes it cannot recompute), and once
more explicitly by rebuilding a file from the stored xorbs and rehashing it independently.
"""
import hashlib
import json
import os
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from huggingface_hub import HfApi, constants, get_hf_file_metadata, hf_hub_download, hf_hub_url, snapshot_download

from helpers.hub import drop_next_download, spawn_hub_server
from helpers.safetensors_file import checkpoint, float32_bytes, write_safetensors
from se_zoo.registry.store.fsck import fsck
from se_zoo.registry.xet import check_xet
from se_zoo.registry.xet.hashing import chunk_hash, file_hash, hash_from_hex, hash_hex, xorb_hash
from se_zoo.registry.xet.shard import HEADER_TAG, parse_shard

MiB = 1024 * 1024


def _new_repo(hub_server, name: str, private: bool = False) -> str:
    repo_id = f"{hub_server.namespace}/{name}"
    HfApi().create_repo(repo_id, private=private)
    return repo_id


def _xet_files(root: Path) -> dict:
    return {p.name[:-5]: json.loads(p.read_bytes()) for p in (root / "xet" / "files").glob("*/*.json")}


def _call(method: str, url: str, body: bytes = None, token: str = None) -> tuple:
    request = urllib.request.Request(url, data=body, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _xet_token(hub_server, repo_id: str, kind: str = "write", token: str = None) -> str:
    url = f"{hub_server.endpoint}/api/models/{repo_id}/xet-{kind}-token/main"
    status, body = _call("GET", url, token=token or hub_server.token)
    assert status == 200, body
    answer = json.loads(body)
    assert answer["casUrl"] == hub_server.endpoint and answer["exp"] > time.time()
    return answer["accessToken"]


def _rebuild_from_xorbs(root: Path, entry: dict) -> tuple:
    """The file bytes and Xet hash rebuilt from stored xorbs, independently of the registry's code paths."""
    import lz4.frame

    data, leaves = bytearray(), []
    for xorb_hex, start, end, _ in entry["terms"]:
        body = (root / "xet" / "xorbs" / xorb_hex[:2] / xorb_hex).read_bytes()
        pos, index = 0, 0
        while pos < len(body):
            clen, scheme, size = int.from_bytes(body[pos + 1:pos + 4], "little"), body[pos + 4], \
                int.from_bytes(body[pos + 5:pos + 8], "little")
            payload = body[pos + 8:pos + 8 + clen]
            raw = payload if scheme == 0 else lz4.frame.decompress(payload)
            if scheme == 2:  # undo the 4-way byte grouping
                out, at = bytearray(size), 0
                for i in range(4):
                    n = len(range(i, size, 4))
                    out[i::4], at = raw[at:at + n], at + n
                raw = bytes(out)
            if start <= index < end:
                data += raw
                leaves.append((chunk_hash(raw), size))
            pos, index = pos + 8 + clen, index + 1
    return bytes(data), hash_hex(file_hash(leaves))


# the client's upload paths ---------------------------------------------------------------------

def test_upload_file_goes_through_xet_and_serves_identical_bytes(hub_server, tmp_path):
    repo_id = _new_repo(hub_server, "upload-file")
    path = tmp_path / "model.safetensors"
    write_safetensors(path, checkpoint(6 * MiB))
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    before = hub_server.registry.xet.received_bytes

    HfApi().upload_file(path_or_fileobj=str(path), path_in_repo="model.safetensors", repo_id=repo_id)

    received = hub_server.registry.xet.received_bytes - before
    assert 0 < received < len(data)  # the bytes came through Xet (compressed), not through LFS
    registered = {h: e for h, e in _xet_files(hub_server.root).items() if e["sha256"] == sha}
    assert len(registered) == 1 and hub_server.registry.store.has_blob(sha, len(data))
    (file_hex, entry), = registered.items()
    rebuilt, rehashed = _rebuild_from_xorbs(hub_server.root, entry)
    assert rebuilt == data and rehashed == file_hex  # our hashing agrees with what hf_xet computed

    assert Path(hf_hub_download(repo_id, "model.safetensors")).read_bytes() == data
    meta = get_hf_file_metadata(hf_hub_url(repo_id, "model.safetensors"))
    assert meta.etag == sha and meta.size == len(data)
    status, part = _call("GET", hf_hub_url(repo_id, "model.safetensors").replace("/main/", f"/{meta.commit_hash}/"))
    assert status == 200 and part == data
    assert check_xet(hub_server.root, grace_seconds=0).problems == []


@pytest.mark.slow
def test_upload_file_of_a_large_safetensors_checkpoint(hub_server, tmp_path):
    repo_id = _new_repo(hub_server, "upload-large")
    path = tmp_path / "model.safetensors"
    write_safetensors(path, checkpoint(80 * MiB, n_tensors=40))
    assert path.stat().st_size >= 50 * MiB
    before = hub_server.registry.xet.received_bytes
    HfApi().upload_file(path_or_fileobj=str(path), path_in_repo="model.safetensors", repo_id=repo_id)
    assert hub_server.registry.xet.received_bytes > before
    downloaded = Path(hf_hub_download(repo_id, "model.safetensors"))
    assert downloaded.stat().st_size == path.stat().st_size
    assert hashlib.sha256(downloaded.read_bytes()).digest() == hashlib.sha256(path.read_bytes()).digest()


def test_upload_folder_and_snapshot_download(hub_server, tmp_path):
    repo_id = _new_repo(hub_server, "folder")
    folder = tmp_path / "ckpt"
    (folder / "sub").mkdir(parents=True)
    write_safetensors(folder / "a.safetensors", checkpoint(2 * MiB, seed=1))
    (folder / "sub" / "b.bin").write_bytes(b"\0" + os.urandom(MiB))  # NUL in the sample: LFS
    (folder / "config.json").write_text('{"architecture": "seresnet18"}')
    before = hub_server.registry.xet.received_bytes

    HfApi().upload_folder(folder_path=folder, repo_id=repo_id)

    assert hub_server.registry.xet.received_bytes > before
    local = Path(snapshot_download(repo_id, cache_dir=tmp_path / "cache"))
    for name in ("a.safetensors", "sub/b.bin", "config.json"):
        assert (local / name).read_bytes() == (folder / name).read_bytes()


def test_hf_cli_upload(hub_server, tmp_path):
    repo_id = _new_repo(hub_server, "cli")
    path = tmp_path / "w.safetensors"
    write_safetensors(path, checkpoint(MiB, seed=2))
    hf = Path(sys.executable).parent / "hf"
    before = hub_server.registry.xet.received_bytes
    subprocess.run([str(hf), "upload", repo_id, str(path), "w.safetensors"], check=True, env=dict(os.environ),
                   capture_output=True, timeout=300)
    assert hub_server.registry.xet.received_bytes > before
    assert Path(hf_hub_download(repo_id, "w.safetensors")).read_bytes() == path.read_bytes()


def test_plain_lfs_path_still_works_with_xet_disabled(hub_server, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")  # HF_HUB_DISABLE_XET=1 takes the plain LFS path
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # (HF_HUB_DISABLE_XET=1 read at import: plain LFS)
    repo_id = _new_repo(hub_server, "plain-lfs")
    data = b"\0" + os.urandom(2 * MiB)  # NUL in the sample: an LFS file, whatever the random bytes
    before = hub_server.registry.xet.received_bytes
    HfApi().upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id=repo_id)
    assert hub_server.registry.xet.received_bytes == before
    assert hashlib.sha256(data).hexdigest() not in [e["sha256"] for e in _xet_files(hub_server.root).values()]
    assert Path(hf_hub_download(repo_id, "w.bin")).read_bytes() == data


def test_xet_download_path_serves_identical_bytes(hub_server, tmp_path, monkeypatch):
    repo_id = _new_repo(hub_server, "xet-download")
    data = b"\0" + os.urandom(3 * MiB - 1) + bytes(MiB) + os.urandom(MiB)  # NUL in the sample: an LFS file
    HfApi().upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id=repo_id)
    registry = hub_server.registry
    registry.xet.announce_downloads = True
    plain_http = drop_next_download(monkeypatch, 0)  # would cut (and be used up by) any plain HTTP download
    try:
        meta = get_hf_file_metadata(hf_hub_url(repo_id, "w.bin"))
        assert meta.xet_file_data is not None
        assert Path(hf_hub_download(repo_id, "w.bin", cache_dir=tmp_path / "c")).read_bytes() == data
        assert plain_http["armed"]  # the bytes came through /v1/reconstructions + xorb fetches
    finally:
        registry.xet.announce_downloads = False


# dedup ---------------------------------------------------------------------------------------------

def test_second_checkpoint_sends_only_what_changed(hub_server, tmp_path, monkeypatch):
    repo_id = _new_repo(hub_server, "dedup")
    state = checkpoint(16 * MiB, seed=3)
    first, second = tmp_path / "v1.safetensors", tmp_path / "v2.safetensors"
    write_safetensors(first, state)
    state["layer10.weight"] = float32_bytes(len(state["layer10.weight"]) // 4, seed=4)  # one tensor, 5% of the bytes
    write_safetensors(second, state)
    api = HfApi()
    api.upload_file(path_or_fileobj=str(first), path_in_repo="model.safetensors", repo_id=repo_id)
    # a fresh client process and cache: the reuse must come from the registry's dedup query
    store, answered = hub_server.registry.xet.store, []
    dedup_xorb = store.dedup_xorb
    monkeypatch.setattr(store, "dedup_xorb", lambda chunk: answered.append(dedup_xorb(chunk)) or answered[-1])
    before = hub_server.registry.xet.received_bytes
    env = dict(os.environ, HF_HOME=str(tmp_path / "fresh-hf-home"))
    env.pop("HF_XET_CACHE", None)
    script = ("import sys; from huggingface_hub import HfApi; "
              "HfApi().upload_file(path_or_fileobj=sys.argv[1], path_in_repo='model.safetensors', repo_id=sys.argv[2])")
    subprocess.run([sys.executable, "-c", script, str(second), repo_id], env=env, check=True, timeout=300)

    sent, size = hub_server.registry.xet.received_bytes - before, second.stat().st_size
    print(f"\nsecond checkpoint: {sent} of {size} bytes sent to the registry ({100 * sent / size:.1f}%)")
    assert sent <= 0.15 * size
    assert [a for a in answered if a is not None], "the registry's dedup query was never asked or never answered"
    assert Path(hf_hub_download(repo_id, "model.safetensors")).read_bytes() == second.read_bytes()


# faults --------------------------------------------------------------------------------------------

def _xorb(chunks) -> tuple:
    body = b"".join(bytes([0]) + len(c).to_bytes(3, "little") + bytes([0]) + len(c).to_bytes(3, "little") + c
                    for c in chunks)
    return hash_hex(xorb_hash([(chunk_hash(c), len(c)) for c in chunks])), body


def _shard(files, xorbs) -> bytes:
    """An uploaded-format shard; ``files``: (file hash hex, [(xorb hex, start, end, size)], sha256 hex or None)."""
    entry = struct.Struct("<32sIIII")
    out = [HEADER_TAG, struct.pack("<QQ", 2, 200)]
    for file_hex, terms, sha in files:
        flags = 1 << 30 if sha else 0
        out.append(struct.pack("<32sIIQ", hash_from_hex(file_hex), flags, len(terms), 0))
        out += [entry.pack(hash_from_hex(x), 0, size, start, end) for x, start, end, size in terms]
        if sha:
            out.append(hash_from_hex(sha) + bytes(16))
    out.append(b"\xff" * 32 + bytes(16))
    for xorb_hex, chunks in xorbs:
        out.append(entry.pack(hash_from_hex(xorb_hex), 0, len(chunks), sum(map(len, chunks)), 0))
        offset = 0
        for c in chunks:
            out.append(entry.pack(chunk_hash(c), offset, len(c), 0, 0))
            offset += len(c)
    out.append(b"\xff" * 32 + bytes(16))
    return b"".join(out)


def _state(root: Path) -> list:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "repos" not in p.parts)


def test_a_xorb_with_a_wrong_hash_is_refused_and_nothing_stored(hub_server):
    repo_id = _new_repo(hub_server, "bad-xorb")
    token = _xet_token(hub_server, repo_id)
    good_hex, body = _xorb([os.urandom(5000), os.urandom(7000)])
    stored = _state(hub_server.root)
    wrong_hex = good_hex[:-1] + ("0" if good_hex[-1] != "0" else "1")
    status, answer = _call("POST", f"{hub_server.endpoint}/v1/xorbs/default/{wrong_hex}", body, token)
    assert status == 400 and b"hashes to " + good_hex.encode() in answer
    corrupt = body[:20] + bytes([body[20] ^ 1]) + body[21:]
    status, answer = _call("POST", f"{hub_server.endpoint}/v1/xorbs/default/{good_hex}", corrupt, token)
    assert status == 400
    status, answer = _call("POST", f"{hub_server.endpoint}/v1/xorbs/default/{good_hex}", body[:-3], token)
    assert status == 400 and b"ends inside" in answer
    assert _state(hub_server.root) == stored
    status, answer = _call("POST", f"{hub_server.endpoint}/v1/xorbs/default/{good_hex}", body, token)
    assert status == 200 and json.loads(answer) == {"was_inserted": True}


def test_a_shard_naming_a_missing_xorb_or_wrong_ranges_is_refused(hub_server):
    repo_id = _new_repo(hub_server, "bad-shard")
    token = _xet_token(hub_server, repo_id)
    chunks = [os.urandom(3000), os.urandom(4000), os.urandom(5000)]
    xorb_hex, body = _xorb(chunks)
    assert _call("POST", f"{hub_server.endpoint}/v1/xorbs/default/{xorb_hex}", body, token)[0] == 200
    good_file = hash_hex(file_hash([(chunk_hash(c), len(c)) for c in chunks]))
    missing_hex, _ = _xorb([os.urandom(100)])
    stored = _state(hub_server.root)
    bad_shards = {
        "not uploaded": _shard([(good_file, [(missing_hex, 0, 3, 12000)], None)], []),
        "outside": _shard([(good_file, [(xorb_hex, 0, 4, 12000)], None)], []),
        "hold": _shard([(good_file, [(xorb_hex, 0, 3, 11999)], None)], []),
        "hash to": _shard([(good_file, [(xorb_hex, 0, 2, 7000)], None)], []),
        "other than the uploaded": _shard([], [(xorb_hex, chunks[:2])]),
        "MDB shard tag": b"\0" * 100,
        "ends inside": _shard([(good_file, [(xorb_hex, 0, 3, 12000)], None)], [])[:-60],
    }
    for expected, shard in bad_shards.items():
        status, answer = _call("POST", f"{hub_server.endpoint}/v1/shards", shard, token)
        assert status == 400 and expected.encode() in answer, (expected, answer)
    assert _state(hub_server.root) == stored
    good = _shard([(good_file, [(xorb_hex, 0, 3, 12000)], None)], [(xorb_hex, chunks)])
    assert parse_shard(good).files[0].terms[0].end == 3
    assert _call("POST", f"{hub_server.endpoint}/v1/shards", good, token) == (200, b'{"result":1}')


def test_a_commit_whose_rebuilt_bytes_differ_from_its_oid_is_refused(hub_server):
    repo_id = _new_repo(hub_server, "bad-commit")
    api = HfApi()
    head = api.model_info(repo_id).sha
    token = _xet_token(hub_server, repo_id)
    chunks = [os.urandom(6000), os.urandom(6000)]
    xorb_hex, body = _xorb(chunks)
    file_hex = hash_hex(file_hash([(chunk_hash(c), len(c)) for c in chunks]))
    claimed = hashlib.sha256(b"other bytes").hexdigest()  # the shard lies about the file's sha256
    assert _call("POST", f"{hub_server.endpoint}/v1/xorbs/default/{xorb_hex}", body, token)[0] == 200
    shard = _shard([(file_hex, [(xorb_hex, 0, 2, 12000)], claimed)], [])
    assert _call("POST", f"{hub_server.endpoint}/v1/shards", shard, token)[0] == 200
    lines = [{"key": "header", "value": {"summary": "lying upload"}},
             {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": claimed, "size": 12000}}]
    status, answer = _call_commit(hub_server, repo_id, lines)
    assert status == 400 and b"rebuilds to other bytes" in answer
    assert api.model_info(repo_id).sha == head
    assert not hub_server.registry.store.has_blob(claimed)
    assert not hub_server.registry.store.has_blob(hashlib.sha256(b"".join(chunks)).hexdigest())
    assert list(hub_server.registry.store.tmp.path.iterdir()) == []


def _call_commit(hub_server, repo_id: str, lines: list) -> tuple:
    body = "\n".join(json.dumps(line) for line in lines).encode()
    request = urllib.request.Request(f"{hub_server.endpoint}/api/models/{repo_id}/commit/main", data=body,
                                     method="POST", headers={"Authorization": f"Bearer {hub_server.token}",
                                                             "Content-Type": "application/x-ndjson"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_cas_calls_need_a_valid_write_token(hub_server):
    repo_id = _new_repo(hub_server, "tokens")
    private_id = _new_repo(hub_server, "tokens-private", private=True)
    xorb_hex, body = _xorb([os.urandom(4000)])
    url = f"{hub_server.endpoint}/v1/xorbs/default/{xorb_hex}"
    stored = _state(hub_server.root)
    expired = hub_server.registry.xet.tokens
    expired_token = expired.encode(expired.issue(repo_id, "write", ttl=-10))
    read_token = _xet_token(hub_server, repo_id, kind="read", token=hub_server.read_token)
    cases = [(None, 401, b"token is required"), ("garbage.token", 401, b"not issued by this registry"),
             (expired_token, 401, b"expired"), (read_token, 403, b"read-only")]
    for token, status, message in cases:
        got, answer = _call("POST", url, body, token)
        assert got == status and message in answer, (token, answer)
        assert _call("POST", f"{hub_server.endpoint}/v1/shards", _shard([], []), token)[0] == status
    assert _state(hub_server.root) == stored
    # the token endpoints follow the repository's rules
    token_url = f"{hub_server.endpoint}/api/models/{repo_id}/xet-write-token/main"
    assert _call("GET", token_url)[0] == 401
    assert _call("GET", token_url, token=hub_server.read_token)[0] == 403
    assert _call("GET", f"{hub_server.endpoint}/api/models/{private_id}/xet-read-token/main")[0] == 404
    assert _call("GET", f"{hub_server.endpoint}/api/models/{private_id}/xet-read-token/main",
                 token=hub_server.read_token)[0] == 200
    # the newer endpoints answer 404 so that the client falls back to v1
    for path in (f"/v1/xorb-grants/default/{xorb_hex}", "/v2/shards"):
        assert _call("POST", hub_server.endpoint + path, b"{}", _xet_token(hub_server, repo_id))[0] == 404


def test_kill_during_a_xet_upload_leaves_the_previous_commit(tmp_path):
    root = tmp_path / "hub"
    server = spawn_hub_server(root)
    env = dict(os.environ, HF_ENDPOINT=server.endpoint, HF_TOKEN=server.token, HF_HOME=str(tmp_path / "hf"),
               HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_TELEMETRY="1")
    env.pop("HF_HUB_DISABLE_XET", None)  # the defaults: no HF_HUB_DISABLE_XET=1 (that is the plain LFS path)
    script = ("import sys; from huggingface_hub import HfApi; api = HfApi(); "
              "api.create_repo('sub/kill', exist_ok=True); "
              "api.upload_file(path_or_fileobj=sys.argv[1], path_in_repo=sys.argv[2], repo_id='sub/kill')")
    small, big = tmp_path / "small.bin", tmp_path / "big.bin"
    small.write_bytes(os.urandom(MiB) + b"\0")
    big.write_bytes(os.urandom(48 * MiB))
    try:
        subprocess.run([sys.executable, "-c", script, str(small), "small.bin"], env=env, check=True, timeout=300)
        head = json.loads(_call("GET", f"{server.endpoint}/api/models/sub/kill")[1])["sha"]
        upload = subprocess.Popen([sys.executable, "-c", script, str(big), "big.bin"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not list((root / "tmp").glob("*/xorb-*")) and time.monotonic() < deadline:
            time.sleep(0.01)  # wait until a xorb body is arriving
        assert list((root / "tmp").glob("*/xorb-*")), "the upload never reached the xorb endpoint"
        server.process.kill()
        server.process.wait()
        upload.kill()  # it would only retry against the dead server
        upload.wait()
    finally:
        server.process.kill()
    restarted = spawn_hub_server(root)
    try:
        info = json.loads(_call("GET", f"{restarted.endpoint}/api/models/sub/kill")[1])
        assert info["sha"] == head and [s["rfilename"] for s in info["siblings"]] == ["small.bin"]
        assert list((root / "tmp").rglob("xorb-*")) == []  # the dead process's spool went with its folder
        report = check_xet(root, grace_seconds=0, remove=True)
        assert report.problems == []
        assert check_xet(root, grace_seconds=0).clean
        assert fsck(root, gc=True, grace=0).problems == []  # `se-zoo hub fsck --gc` clean
        assert fsck(root, grace=0).garbage == []
    finally:
        restarted.process.kill()


def test_gc_removes_unreferenced_xorbs_only_after_the_grace_period(hub_server):
    repo_id = _new_repo(hub_server, "gc")
    token = _xet_token(hub_server, repo_id)
    xorb_hex, body = _xorb([os.urandom(3000)])
    assert _call("POST", f"{hub_server.endpoint}/v1/xorbs/default/{xorb_hex}", body, token)[0] == 200
    path = hub_server.root / "xet" / "xorbs" / xorb_hex[:2] / xorb_hex
    assert path not in check_xet(hub_server.root).garbage  # young: maybe an upload in progress
    assert path in check_xet(hub_server.root, grace_seconds=0).garbage
