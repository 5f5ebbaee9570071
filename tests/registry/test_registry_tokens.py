"""Secrets off the command line: tokens from the environment or a file, and docs that show that."""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.hub import point_client_at
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from se_zoo.registry.cli import TOKEN_ENV, TOKENS_FILE_ENV, tokens_from

ROOT = Path(__file__).resolve().parents[2]


def _args(**kwargs):
    return argparse.Namespace(**{"token": None, "tokens_file": None, **kwargs})


def test_tokens_come_from_flags_then_environment(tmp_path):
    file = tmp_path / "tokens"
    file.write_text("reader:read\n")
    assert tokens_from(_args(), {TOKEN_ENV: "envtoken"}) == {"envtoken": "write"}
    assert tokens_from(_args(), {TOKENS_FILE_ENV: str(file), TOKEN_ENV: "w"}) == {"reader": "read", "w": "write"}
    assert tokens_from(_args(tokens_file=file), {TOKEN_ENV: "ignored"}) == {"reader": "read"}
    assert tokens_from(_args(token="t"), {}) == {"t": "write"}
    assert tokens_from(_args(), {}) == {}
    with pytest.raises(FileNotFoundError):
        tokens_from(_args(), {TOKENS_FILE_ENV: str(tmp_path / "missing")})


def _serve_with_env(root: Path, env: dict) -> tuple:
    log = root.parent / "env.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "se_zoo.registry", "serve", "--root", str(root)],
                                   stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env})
    deadline = time.monotonic() + 60
    while not (endpoint := next((x for x in log.read_text().split("\n")[:-1] if x.startswith("http://")), None)):
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    return process, endpoint, log


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc")
def test_environment_token_is_not_in_the_process_list(tmp_path, monkeypatch):
    secret = "hf_env_only_secret_token"
    process, endpoint, log = _serve_with_env(tmp_path / "root", {TOKEN_ENV: secret})
    try:
        assert secret not in Path(f"/proc/{process.pid}/cmdline").read_text()
        point_client_at(monkeypatch, endpoint, secret, tmp_path / "hf_home")
        HfApi().create_repo("org/env")  # the environment token is a write token
        with pytest.raises(HfHubHTTPError):
            HfApi(token="hf_wrong").create_repo("org/env2")
    finally:
        process.kill()
        process.wait()
    assert "POST /api/repos/create" in log.read_text() and secret not in log.read_text()


def test_docs_do_not_show_tokens_on_the_command_line():
    for doc in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for line in doc.read_text().splitlines():
            assert not ("hub serve" in line and "--token " in line), (doc.name, line)
