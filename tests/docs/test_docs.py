"""Every shell and Python block of README.md and docs/*.md runs, as written, against a local registry.

The blocks of one Markdown file run in order in one fresh working directory, as
a reader would type them into one terminal: a shell block's exports and
directory change carry over to the next block of the same file, processes it
leaves in the background live until the file is done. Each file gets its own
registry on loopback (``HF_ENDPOINT``, a write ``HF_TOKEN``, Xet off) and an
empty ``HF_HOME``; ``se-zoo``, ``python`` and ``torchrun`` are this checkout's.
Directives in the Markdown (see ``tests/docs/doc_blocks.py``) mark blocks that need
the public network or GPUs (syntax checked only) and heavy ones (slow set).
A block that fails fails its test, with its output.
"""
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from doc_blocks import Block, blocks

ROOT = Path(__file__).resolve().parents[2]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [block for path in FILES for block in blocks(path)]


class _FileSession:
    """The terminal, working directory and registry the blocks of one Markdown file share."""

    def __init__(self, path: Path, base: Path):
        from se_zoo.registry.app import HubServer

        self.path, self.dir = path, base / path.stem
        self.work = self.dir / "work"
        self.work.mkdir(parents=True)
        (self.work / "scripts").symlink_to(ROOT / "scripts")  # the docs run `python scripts/...` from a checkout
        token = secrets.token_hex(16)
        self.server = HubServer(self.dir / "registry", {token: "write"}).start()
        self.groups: List[int] = []
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("HF_", "HUGGING_FACE_")) and k not in ("PYTHONWARNINGS",)}
        env.update(HF_ENDPOINT=self.server.endpoint, HF_TOKEN=token, HF_HOME=str(self.dir / "hf_home"),
                   HF_HUB_DISABLE_TELEMETRY="1",
                   PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                   PYTHONPATH=str(ROOT))
        self.env_file = self.dir / "env.sh"
        self.env_file.write_text("".join(f"export {k}={_quote(v)}\n" for k, v in env.items()))
        self.cwd_file = self.dir / "cwd"
        self.cwd_file.write_text(str(self.work))
        self.count = 0

    def run(self, block: Block, timeout: float) -> None:
        self.count += 1
        code_file = self.dir / f"block{self.count}.{'py' if block.lang == 'python' else 'sh'}"
        code_file.write_text(block.runnable_code())
        body = f'python "{code_file}"' if block.lang == "python" else f'source "{code_file}"'
        script = (f'set -eo pipefail\nsource "{self.env_file}"\ncd "$(cat "{self.cwd_file}")"\n{body}\n'
                  f'export -p > "{self.env_file}.next" && mv "{self.env_file}.next" "{self.env_file}"\n'
                  f'pwd > "{self.cwd_file}"\n')
        log = self.dir / f"block{self.count}.log"
        with open(log, "w") as out:  # a file, not a pipe: a background server must not hold the test
            proc = subprocess.Popen(["bash", "-c", script], stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            self.groups.append(proc.pid)
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                code = f"timeout after {timeout:.0f} s"
        if code != 0:
            pytest.fail(f"{block.id} ({block.lang}) failed ({code}):\n{block.runnable_code()}\n--- output ---\n"
                        f"{log.read_text()[-6000:]}", pytrace=False)

    def close(self) -> None:
        for group in self.groups:
            try:
                os.killpg(group, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.server.stop()


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


@pytest.fixture(scope="session")
def doc_terminal(tmp_path_factory):
    """Returns the session of a Markdown file, closing the previous file's when a new file starts."""
    base = tmp_path_factory.mktemp("docs")
    current: Dict[str, Optional[_FileSession]] = {"session": None}

    def session_for(path: Path) -> _FileSession:
        if current["session"] is None or current["session"].path != path:
            if current["session"] is not None:
                current["session"].close()
            current["session"] = _FileSession(path, base)
        return current["session"]

    yield session_for
    if current["session"] is not None:
        current["session"].close()


def _check_syntax(block: Block) -> None:
    if block.lang == "python":
        compile(block.code, block.id, "exec")
        return
    done = subprocess.run(["bash", "-n"], input=block.code, capture_output=True, text=True)
    assert done.returncode == 0, f"{block.id}: {done.stderr}"


@pytest.mark.parametrize("block", [
    pytest.param(b, id=b.id, marks=[pytest.mark.slow] if "slow" in b.kinds else []) for b in BLOCKS])
def test_documented_block_runs(block: Block, doc_terminal):
    _check_syntax(block)
    if block.syntax_only:
        return
    doc_terminal(block.path).run(block, timeout=3600 if "slow" in block.kinds else 600)


def test_every_markdown_file_is_collected():
    assert {b.path.name for b in BLOCKS} >= {"README.md", "hub.md", "training.md"}
    assert all(b.lang in ("shell", "python") for b in BLOCKS)


def test_directives_are_read_and_malformed_ones_refused(tmp_path):
    page = tmp_path / "page.md"
    page.write_text('<!-- doctest: network -->\n```bash\nse-zoo pull a/b\n```\n\n'
                    '<!-- doctest: slow sub="--epochs 8|--epochs 1" -->\n'
                    '```python\nrun(epochs=8, args="--epochs 8")\n```\n\n'
                    '```bibtex\n@x{}\n```\n')
    net, slow = blocks(page)
    assert (net.lang, net.kinds, net.syntax_only, net.line) == ("shell", ("network",), True, 2)
    assert slow.kinds == ("slow",) and slow.runnable_code() == 'run(epochs=8, args="--epochs 1")\n'
    for bad, message in [('<!-- doctest: quick -->\n```bash\nls\n```\n', "must be one of"),
                         ('<!-- doctest: sub="a|b" -->\n```bash\nls\n```\n', "slow blocks only"),
                         ('<!-- doctest: slow -->\ntext\n\n```bash\nls\n```\n', "right above a code block")]:
        page.write_text(bad)
        with pytest.raises(ValueError, match=message):
            blocks(page)
