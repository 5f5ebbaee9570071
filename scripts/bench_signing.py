"""What signing and verifying a checkpoint cost, against hashing it with sha256 alone.

Usage::

    python scripts/bench_signing.py [--mib 100 1024] [--rounds 3]

For each size, writes a repo folder (``model.safetensors`` of ``--mib`` random MiB, a
``config.json``) and times, interleaved round by round:

- ``sha256``: hashlib over the weights file, 1 MiB reads (what ``from_pretrained`` already does);
- ``sign``: :func:`se_zoo.registry.signing.sign_directory` (model-signing: hash every file, sign
  the manifest with a P-256 key, write ``model.sig``);
- ``verify``: :func:`se_zoo.registry.signing.verify_directory` (what ``SE_ZOO_TRUSTED_KEYS`` adds
  to a load: hash every file, check the signature and compare);
- ``verify (model-signing)``: model-signing's own ``verifying.Config().verify`` on the folder;
- ``registry check``: the registry's ``--require-signed`` check of a commit, which reads the stored
  sha256 of every file and hashes nothing (signature check and comparison only).

Prints the median seconds of each and the ratio to ``sha256``, with the load average (the figures
depend on what else runs on the machine). Needs the ``signing`` extra; torch-free.
"""
import argparse
import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

MiB = 1024 * 1024


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _key_pair(folder: Path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = folder / "bench.pem", folder / "bench.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def _write_model(folder: Path, mib: int) -> None:
    folder.mkdir()
    with open(folder / "model.safetensors", "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(MiB))
    (folder / "config.json").write_text('{"architecture": "se_zoo_resnet50"}\n')


def bench(mib: int, rounds: int, work: Path) -> Dict[str, List[float]]:
    """Times of each step for one checkpoint size, ``rounds`` interleaved rounds."""
    from model_signing import verifying

    from se_zoo.registry.signing import (SIGNATURE_NAME, TrustedKey, check_files, sign_directory,
                                         verify_directory, verify_signature)

    private, public = _key_pair(work)
    model = work / f"model-{mib}"
    _write_model(model, mib)
    key = TrustedKey.from_file(public)
    sign_directory(model, private)
    stored = {p.name: _sha256(p) for p in model.iterdir()}  # what a registry keeps per file
    steps: Dict[str, Callable[[], object]] = {
        "sha256": lambda: _sha256(model / "model.safetensors"),
        "sign": lambda: sign_directory(model, private),
        "verify": lambda: verify_directory(model, "bench/model", [key]),
        "verify (model-signing)": lambda: verifying.Config().use_elliptic_key_verifier(public_key=public).verify(
            model, model / SIGNATURE_NAME),
        "registry check": lambda: check_files("bench/model", verify_signature(
            (model / SIGNATURE_NAME).read_bytes(), "bench/model", [key]), stored),
    }
    times: Dict[str, List[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    """Run the benchmark and print a table per size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, nargs="+", default=[100, 1024], help="checkpoint sizes in MiB")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median reported)")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        for mib in args.mib:
            work = Path(tmp) / str(mib)
            work.mkdir()
            times = bench(mib, args.rounds, work)
            base = statistics.median(times["sha256"])
            print(f"\n{mib} MiB checkpoint, median of {args.rounds} rounds")
            print(f"  {'step':<24} {'seconds':>8} {'MiB/s':>8} {'x sha256':>9}")
            for name, values in times.items():
                median = statistics.median(values)
                print(f"  {name:<24} {median:8.3f} {mib / median:8.0f} {median / base:9.2f}")
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
