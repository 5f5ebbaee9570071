"""A registry in a subprocess, for the benchmark scripts: started from a given checkout, waited for."""
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence, Tuple


def serve_registry(root: Path, log: Path, args: Sequence[str], checkout: Path) -> Tuple[subprocess.Popen, str]:
    """Start ``python -m se_zoo.registry serve --root ROOT *args`` from ``checkout``; wait for its endpoint.

    Args:
        root: The registry root.
        log: File that receives the server's output (its first ``http://`` line is the endpoint).
        args: More ``serve`` arguments.
        checkout: The source tree put first on ``PYTHONPATH`` (to compare revisions).

    Returns:
        ``(process, endpoint)``.

    Raises:
        RuntimeError: if the server exits or prints no endpoint within 120 s (its log is in the message).
    """
    out = open(log, "w")
    process = subprocess.Popen([sys.executable, "-m", "se_zoo.registry", "serve", "--root", str(root), *args],
                               stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(checkout)})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        endpoint = next((line for line in log.read_text().split("\n")[:-1] if line.startswith("http://")), None)
        if endpoint:
            return process, endpoint
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the registry from {checkout} did not start:\n{log.read_text()}")


def add_big_file(root: Path, mib: int) -> Tuple[str, Path]:
    """Commit ``mib`` MiB of random bytes as ``bench/big``'s LFS file ``big.bin`` on main, straight into the store.

    Args:
        root: The registry root (created if missing).
        mib: The file's size in MiB.

    Returns:
        ``(commit id, path of the blob's file)``.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's se_zoo, installed or not
    from se_zoo.registry.store.storage import Store

    store = Store(root)
    try:
        with store.blob_writer() as writer:
            for _ in range(mib):
                writer.write(os.urandom(1024 * 1024))
            sha = writer.commit()
        store.create_repo("bench", "big", private=False)
        store.commit("bench", "big", "main", [{"op": "add", "path": "big.bin", "sha256": sha,
                                               "size": mib * 1024 * 1024, "lfs": True}], title="big file")
        return store.resolve("bench", "big", "main"), store.blob_path(sha)
    finally:
        store.close()
