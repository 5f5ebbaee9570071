"""The registry behind Debian's nginx with ``--accel-redirect``: the registry checks, nginx sends the bytes.

Runs a real nginx (its own config, pid and logs in tmp_path, a loopback port) in front of
``se-zoo hub serve --accel-redirect``, with the locations docs/hub.md documents, and talks to it
through the official client. Skips when nginx is not installed (``apt-get install nginx``).
"""
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import RepositoryNotFoundError
from huggingface_hub.utils import get_session
from starlette.testclient import TestClient

from se_zoo.registry.app import create_app
from se_zoo.registry.store.storage import Store

from helpers.hub import WRITE_TOKEN, point_client_at, spawn_hub_server

PREFIX = "/_se_zoo_blobs/"
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)")

# The internal location of docs/hub.md: nginx sends the blob with the registry's file headers
BLOB_LOCATION = """
        location {prefix} {{
            internal;
            alias {blobs}/;
            etag off;
            add_header ETag $upstream_http_etag;
            add_header X-Repo-Commit $upstream_http_x_repo_commit;
            add_header X-Linked-Etag $upstream_http_x_linked_etag;
            add_header X-Linked-Size $upstream_http_x_linked_size;
            add_header X-Xet-Hash $upstream_http_x_xet_hash;
            add_header Link $upstream_http_link;
        }}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_nginx(work: Path, root: Path, upstream: str) -> tuple:
    port = _free_port()
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""  # workers read tmp_path
    temp = "".join(f"    {kind}_temp_path {work / kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    config = work / "nginx.conf"
    config.write_text(f"""{user}
worker_processes 1;
pid {work / 'nginx.pid'};
error_log {work / 'error.log'} warn;
events {{ worker_connections 256; }}
http {{
    access_log {work / 'access.log'};
    sendfile on;
    default_type application/octet-stream;
{temp}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        {BLOB_LOCATION.format(prefix=PREFIX, blobs=root / 'blobs')}
        location / {{
            proxy_pass {upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }}
    }}
}}
""")
    process = subprocess.Popen([NGINX, "-c", str(config), "-p", str(work), "-e", str(work / "error.log"),
                                "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx did not start:\n{(work / 'error.log').read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("nginx did not listen within 30 s")


@pytest.fixture
def behind_nginx(tmp_path, monkeypatch):
    """``(nginx endpoint, registry target)``, the client pointed at nginx with a write token."""
    registry = spawn_hub_server(tmp_path / "root", ["--accel-redirect", PREFIX])
    work = tmp_path / "nginx"
    work.mkdir()
    try:
        nginx, endpoint = _start_nginx(work, registry.root, registry.endpoint)
    except BaseException:
        registry.process.kill()
        raise
    point_client_at(monkeypatch, endpoint, WRITE_TOKEN, tmp_path / "hf_home")
    yield endpoint, registry
    nginx.terminate()
    registry.process.kill()
    nginx.wait(30)
    registry.process.wait(30)


def _flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))


@needs_nginx
def test_downloads_through_nginx_are_checked_by_the_registry_and_sent_by_nginx(behind_nginx, tmp_path):
    endpoint, registry = behind_nginx
    api = HfApi()
    data = b"\0" + os.urandom(12 * 1024 * 1024)  # above the LFS threshold: an LFS file
    api.create_repo("org/model")
    commit = api.upload_file(path_or_fileobj=data, path_in_repo="model.safetensors", repo_id="org/model").oid
    api.upload_file(path_or_fileobj=b'{"a": 1}\n', path_in_repo="config.json", repo_id="org/model")

    local = hf_hub_download("org/model", "model.safetensors", cache_dir=tmp_path / "cache")
    assert hashlib.sha256(Path(local).read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert Path(hf_hub_download("org/model", "config.json", cache_dir=tmp_path / "cache")).read_bytes() == b'{"a": 1}\n'

    url = f"{endpoint}/org/model/resolve/{commit}/model.safetensors"
    session = get_session()
    whole = session.get(url)
    sha = hashlib.sha256(data).hexdigest()
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["ETag"] == f'"{sha}"' and whole.headers["X-Linked-Size"] == str(len(data))
    assert whole.headers["X-Repo-Commit"] == commit and whole.headers["X-Linked-Etag"] == f'"{sha}"'
    assert "x-accel-redirect" not in whole.headers and "Last-Modified" in whole.headers  # nginx sent the file
    part = session.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert session.get(url, headers={"Range": "bytes=100-199", "If-Range": f'"{sha}"'}).status_code == 206
    stale = session.get(url, headers={"Range": "bytes=100-199", "If-Range": '"another-version"'})
    assert stale.status_code == 200 and len(stale.content) == len(data)

    blob = f"{sha[:2]}/{sha}"
    assert session.get(f"{endpoint}{PREFIX}{blob}").status_code == 404  # internal: not reachable directly
    assert (registry.root / "blobs" / blob).exists()

    api.create_repo("org/secret", private=True)
    api.upload_file(path_or_fileobj=b"hidden", path_in_repo="a.txt", repo_id="org/secret")
    assert session.get(f"{endpoint}/org/secret/resolve/main/a.txt").status_code == 404
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("org/secret", "a.txt", cache_dir=tmp_path / "anon", token=False)

    _flip_byte(registry.root / "blobs" / blob, len(data) // 2)  # the registry verifies before handing over
    damaged = session.get(url)
    assert damaged.status_code == 500 and damaged.content != data


def test_accel_redirect_answers_the_same_headers_with_no_body(tmp_path):
    store = Store(tmp_path / "root")
    data = b"\0" + os.urandom(64 * 1024)
    sha = store.put_bytes(data)
    store.create_repo("org", "m", private=False)
    commit = store.commit("org", "m", "main", [{"op": "add", "path": "w.bin", "sha256": sha, "size": len(data),
                                                "lfs": True}], title="w")
    store.close()
    url = f"/org/m/resolve/{commit}/w.bin"
    apps = [create_app(tmp_path / "root", accel_redirect=prefix) for prefix in (None, PREFIX)]
    plain, accel = (TestClient(app) for app in apps)
    for headers in ({}, {"Range": "bytes=10-19"}):
        sent, handed = plain.get(url, headers=headers), accel.get(url, headers=headers)
        assert handed.status_code == 200 and handed.content == b""  # nginx answers the range itself
        assert handed.headers["X-Accel-Redirect"] == f"{PREFIX}{sha[:2]}/{sha}"
        drop = {"content-length", "content-range", "x-accel-redirect"}
        assert {k: v for k, v in handed.headers.items() if k not in drop} == \
            {k: v for k, v in sent.headers.items() if k not in drop}
    assert accel.head(url).headers["Content-Length"] == str(len(data))  # HEAD is answered by the registry
    for app in apps:
        app.state.registry.close()
    for bad in ("blobs/", "/blobs", "/a b/", "/../", "/x/./"):
        with pytest.raises(ValueError, match="accel_redirect"):
            create_app(tmp_path / "root", accel_redirect=bad)
