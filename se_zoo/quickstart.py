"""The whole model-zoo loop (``se-zoo quickstart``), offline, in minutes on a laptop-class CPU.

Playing both sides of a model zoo on scikit-learn's bundled digits:

1. start the local Hub-compatible registry on a free loopback port (unless an
   endpoint is given) and export the digits as an ImageFolder tree;
2. *publisher*: train ``se_zoo_resnet18`` on digits 0-4 and push it, with its
   model card, to ``<namespace>/se-resnet18-digits-0-4``;
3. *consumer*: pull it with plain ``timm.create_model("hf-hub:…", pretrained=True)``,
   check its outputs equal the published model's bit for bit, fine-tune it
   with a new 10-class head on all ten digits, validate, and push the result
   to ``<namespace>/se-resnet18-digits``;
4. print a report and clean up (also on failure or Ctrl-C); with ``--serve`` the
   local registry keeps running first, printing the models' web pages, until Ctrl-C.

The Hub work runs in a child process whose environment points huggingface_hub
at the registry (``HF_ENDPOINT``, ``HF_TOKEN``, a private ``HF_HOME``), exactly
as a user's own process would be configured.
"""
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from .errors import InvalidArgument

__all__ = ["quickstart"]

PUBLISHED = "se-resnet18-digits-0-4"
FINE_TUNED = "se-resnet18-digits"


def _worker(workdir: Path, namespace: str, epochs: int, finetune_epochs: int) -> Dict[str, Any]:
    """Publisher and consumer steps; runs in the child process. Returns the report."""
    import timm
    import torch
    from timm.data import create_transform, resolve_data_config

    from .hub import push_to_hub
    from .training import TrainConfig, train, validate
    from .training.data import create_split

    digits = workdir / "digits"
    report: Dict[str, Any] = {}

    print("\n== publisher: train se_zoo_resnet18 on digits 0-4, push to the registry", flush=True)
    published = train(TrainConfig(
        model="se_zoo_resnet18", data=str(digits), classes=[str(d) for d in range(5)],
        img_size=32, epochs=epochs, batch_size=64, output=str(workdir / "publisher"), workers=0))
    push = push_to_hub(published.output, f"{namespace}/{PUBLISHED}",
                       commit_message="Publish se_zoo_resnet18 trained on digits 0-4")
    report["published"] = {"repo": push.repo_id, "commit": push.commit_sha,
                           "sha256": push.weights_sha256, "val_top1": published.best_top1}

    print(f"\n== consumer: timm.create_model('hf-hub:{push.repo_id}', pretrained=True)", flush=True)
    pulled = timm.create_model(f"hf-hub:{push.repo_id}", pretrained=True).eval()
    reference = timm.create_model(f"local-dir:{published.output}", pretrained=True).eval()
    val = create_split(str(digits), "val", classes=[str(d) for d in range(5)])
    val.transform = create_transform(**resolve_data_config(model=reference))
    images, _ = next(iter(torch.utils.data.DataLoader(val, batch_size=64)))
    with torch.no_grad():
        report["bit_identical"] = bool(torch.equal(pulled(images), reference(images)))
    if not report["bit_identical"]:
        raise RuntimeError("the pulled model's outputs differ from the published model's")

    print("\n== consumer: fine-tune with a new 10-class head on all ten digits, push", flush=True)
    tuned = train(TrainConfig(
        model=f"hf-hub:{push.repo_id}", pretrained=True, num_classes=10, data=str(digits),
        img_size=32, epochs=finetune_epochs, batch_size=64, output=str(workdir / "consumer"), workers=0,
        push_to_hub=f"{namespace}/{FINE_TUNED}"))
    metrics = validate(f"local-dir:{tuned.output}", str(digits), img_size=32, workers=0)
    report["fine_tuned"] = {"repo": tuned.push.repo_id, "commit": tuned.push.commit_sha,
                            "sha256": tuned.push.weights_sha256, "val_top1": metrics["top1"],
                            "val_top5": metrics["top5"], "val_loss": metrics["loss"]}
    return report


def _print_report(report: Dict[str, Any], endpoint: str) -> None:
    pub, tuned = report["published"], report["fine_tuned"]
    print(f"\nse-zoo quickstart report (registry {endpoint})")
    print(f"  published   {pub['repo']}  commit {pub['commit']}  val top-1 {pub['val_top1']:.2f}% (digits 0-4)")
    print(f"              weights sha256 {pub['sha256']}")
    print(f"  pulled      hf-hub:{pub['repo']} with timm: outputs bit-identical to the published model: "
          f"{'yes' if report['bit_identical'] else 'NO'}")
    print(f"  fine-tuned  {tuned['repo']}  commit {tuned['commit']}  val top-1 {tuned['val_top1']:.2f}% "
          f"top-5 {tuned['val_top5']:.2f}% (10 classes)")
    print(f"              weights sha256 {tuned['sha256']}")


def _serve_until_interrupted(endpoint: str, report: Dict[str, Any]) -> None:
    """Print the models' page URLs and wait for Ctrl-C while the registry serves."""
    print("\nThe registry keeps serving. Open the models' pages in a browser:")
    for key in ("published", "fine_tuned"):
        print(f"  {endpoint}/{report[key]['repo']}")
    print("Press Ctrl-C to stop.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("stopped", flush=True)


def quickstart(
        root: Optional[str] = None,
        endpoint: Optional[str] = None,
        token: Optional[str] = None,
        namespace: Optional[str] = None,
        epochs: int = 5,
        finetune_epochs: int = 5,
        serve: bool = False,
) -> Dict[str, Any]:
    """Run the publisher/consumer loop and return its report.

    Args:
        root: Registry directory for the local server (default: a temporary one,
            removed afterwards). Ignored with ``endpoint``.
        endpoint: A Hub to use instead of a local registry (e.g.
            ``https://huggingface.co``); needs ``token`` or ``HF_TOKEN``.
        token: Write token for ``endpoint``.
        namespace: User or organisation for the two repos (default:
            ``quickstart`` locally, the token's user on a remote Hub).
        epochs: Publisher training epochs.
        finetune_epochs: Consumer fine-tuning epochs.
        serve: Keep the local registry running after the report, printing the URLs of the
            published models' web pages, until Ctrl-C.

    Returns:
        The report: both repos' commit shas and weights' sha256, the
        bit-identical check, and the fine-tuned model's validation metrics.

    Raises:
        ValueError: if ``epochs``/``finetune_epochs`` < 1, a remote endpoint has no token, or
            ``serve`` is combined with a remote ``endpoint``.
        RuntimeError: if a step fails (the child's error is in its output above).
    """
    for name, value in (("epochs", epochs), ("finetune_epochs", finetune_epochs)):
        if value < 1:
            raise InvalidArgument(f"{name} must be >= 1, got {value}")
    if serve and endpoint is not None:
        raise InvalidArgument(f"serve keeps the local registry running, so it needs endpoint=None, got {endpoint!r} "
                              "(unset HF_ENDPOINT or drop --endpoint)")
    from .training.data import export_digits

    workdir = Path(tempfile.mkdtemp(prefix="se-zoo-quickstart-"))
    server = None
    try:
        if endpoint is None:
            server, token = _local_registry(Path(root) if root else workdir / "registry")
            endpoint, namespace = server.endpoint, namespace or "quickstart"
        else:
            token, namespace = _remote_login(endpoint, token, namespace)
        counts = export_digits(workdir / "digits")
        print(f"digits exported: {counts['train']} train / {counts['val']} val images", flush=True)

        env = dict(os.environ, HF_ENDPOINT=endpoint, HF_TOKEN=token, HF_HOME=str(workdir / "hf_home"))
        env.pop("HF_HUB_OFFLINE", None)
        report = _run_worker(workdir, namespace, epochs, finetune_epochs, env)
        report["endpoint"] = endpoint
        _print_report(report, endpoint)
        if serve:
            _serve_until_interrupted(endpoint, report)
        return report
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _local_registry(registry: Path):
    """Start the local registry on a free loopback port; the server and its fresh write token."""
    from .registry.app import HubServer

    token = secrets.token_hex(16)
    server = HubServer(registry, {token: "write"}).start()
    print(f"local Hub-compatible registry at {server.endpoint} (root {registry})", flush=True)
    return server, token


def _remote_login(endpoint: str, token: Optional[str], namespace: Optional[str]) -> Tuple[str, str]:
    """The write token for a remote Hub (``token`` or ``HF_TOKEN``) and the namespace (default: its user)."""
    token = token or os.environ.get("HF_TOKEN")
    if not token:
        raise InvalidArgument(f"endpoint {endpoint!r} needs a write token: pass --token or set HF_TOKEN")
    if namespace is None:
        from huggingface_hub import HfApi

        namespace = HfApi(endpoint=endpoint, token=token).whoami()["name"]
    return token, namespace


def _run_worker(workdir: Path, namespace: str, epochs: int, finetune_epochs: int,
                env: Dict[str, str]) -> Dict[str, Any]:
    """Run :func:`_worker` in a child process configured by ``env``; returns its report."""
    report_path = workdir / "report.json"
    cmd = [sys.executable, "-m", "se_zoo.quickstart", "--worker", str(workdir), namespace,
           str(epochs), str(finetune_epochs), str(report_path)]
    child = subprocess.run(cmd, env=env)
    if child.returncode in (130, -signal.SIGINT):
        raise KeyboardInterrupt
    if child.returncode != 0:
        raise RuntimeError(f"quickstart step failed (exit status {child.returncode}); see the output above")
    return json.loads(report_path.read_text())


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    try:
        from se_zoo.verbosity import configure

        configure(0)  # the per-epoch validation top-1 lines, no third-party logs
        _workdir, _namespace, _epochs, _ft_epochs, _report = sys.argv[2:7]
        Path(_report).write_text(json.dumps(_worker(Path(_workdir), _namespace, int(_epochs), int(_ft_epochs))))
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the parent reports it, in one line
        sys.exit(130)
