"""The registry without torch: the se-zoo-registry distribution (packaging/registry), built and installed.

The fast tests compare its metadata with the code and with se-zoo's ``server`` extra. The slow ones
build its wheel, install it into a fresh venv (its dependencies come from the package index), resolve
catalogue tags and serve from that venv, and push and pull with the official client; and install it
next to se-zoo's own wheel to show the two share no file and that either finds the catalogue.
"""
import hashlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest
from helpers.imports import third_party_imports

from se_zoo.registry.mirror.catalog import repos_for_tags

ROOT = Path(__file__).resolve().parents[2]
REGISTRY_PROJECT = ROOT / "packaging" / "registry"
MODEL_SIDE = ("torch", "timm", "torchvision")
WRITE_TOKEN = "hf_torch_free_write_token"
TAGS = ["se_zoo_resnet50.*"]  # what `se-zoo-hub mirror --tags` resolves through the catalogue


def _pyproject(path: Path) -> dict:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")
    return tomllib.loads(path.read_text())


def _names(requirements: List[str]) -> Dict[str, str]:
    """Map each requirement's normalized project name to the requirement."""
    return {re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", r).group()).lower(): r for r in requirements}


def test_registry_distribution_is_the_server_extra():
    main = _pyproject(ROOT / "pyproject.toml")["project"]
    registry = _pyproject(REGISTRY_PROJECT / "pyproject.toml")["project"]
    assert registry["version"] == main["version"]
    assert sorted(registry["dependencies"]) == sorted(main["optional-dependencies"]["server"])
    assert registry["optional-dependencies"]["signing"] == main["optional-dependencies"]["signing"]
    assert not set(_names(registry["dependencies"])) & {"torch", "timm", "torchvision", "safetensors", "numpy"}
    assert registry["scripts"] == {"se-zoo-hub": "se_zoo.registry.__main__:main"}


def test_every_registry_import_is_declared():
    project = _pyproject(REGISTRY_PROJECT / "pyproject.toml")["project"]
    # the dependencies, and the extras of optional features (signing: imported only when used)
    declared = _names([*project["dependencies"], *(r for e in project.get("optional-dependencies", {}).values()
                                                   for r in e)])
    providers = importlib.metadata.packages_distributions()
    imports = third_party_imports(ROOT / "se_zoo" / "registry", ROOT)
    assert "httpx2" in imports and "starlette" in imports  # the scan sees the code
    undeclared = {name: files for name, files in imports.items()
                  if not {re.sub(r"[-_.]+", "-", d).lower() for d in providers.get(name, [])} & set(declared)}
    assert not undeclared, f"imported by the registry but not in packaging/registry/pyproject.toml: {undeclared}"


# ---- the built distribution ----------------------------------------------------------------------------


def _clean_env() -> Dict[str, str]:
    """This environment without what would put the checkout or this venv on a child's path."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "SE_ZOO"))}


def _run(args, timeout: float = 600, **kwargs) -> str:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kwargs)
    assert proc.returncode == 0, f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _wheel(project: Path, name: str, outdir: Path) -> Path:
    """Build ``project``'s wheel (distribution ``name``) with the hatchling installed here (no download)."""
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", outdir, project],
         cwd=outdir.parent)
    (wheel,) = outdir.glob(f"{name.replace('-', '_')}-*.whl")
    return wheel


@pytest.fixture(scope="module")
def registry_wheel(tmp_path_factory) -> Path:
    pytest.importorskip("hatchling", reason="building the wheel needs hatchling (pip install hatchling)")
    return _wheel(REGISTRY_PROJECT, "se-zoo-registry", tmp_path_factory.mktemp("build") / "dist")


def _venv(path: Path) -> Path:
    """A fresh venv without pip (this interpreter's pip installs into it); returns its python."""
    _run([sys.executable, "-m", "venv", "--without-pip", path])
    return path / "bin" / "python"


def _pip_install(python: Path, *args) -> None:
    _run([sys.executable, "-m", "pip", "--python", python, "install", *args], env=_clean_env())


_PROBE = """
import importlib.metadata, importlib.util, json, sys
import se_zoo.registry
from se_zoo.registry.mirror.catalog import catalog_dir, repos_for_tags
names = {d.metadata["Name"].lower() for d in importlib.metadata.distributions()}
print(json.dumps({"registry": se_zoo.registry.__file__, "se_zoo": getattr(sys.modules["se_zoo"], "__file__", None),
                  "distributions": sorted(names), "found": {m: importlib.util.find_spec(m) is not None
                                                           for m in %r},
                  "catalog": str(catalog_dir()), "repos": repos_for_tags(%r)}))
"""


def _probe(python: Path, cwd: Path) -> dict:
    probe = _run([python, "-I", "-c", _PROBE % (MODEL_SIDE, TAGS)], cwd=cwd, env=_clean_env())
    return json.loads(probe.splitlines()[-1])


def _checkout_repos() -> list:
    """What the checkout's own catalogue resolves ``TAGS`` to, as the probe's JSON spells it."""
    return json.loads(json.dumps(repos_for_tags(TAGS, ROOT / "weights")))


def _serve(venv: Path, root: Path, log: Path, timeout: float = 60) -> "tuple[subprocess.Popen, str]":
    tokens = root.parent / "tokens"
    tokens.write_text(f"{WRITE_TOKEN}:write\n")
    with open(log, "w") as out:
        process = subprocess.Popen([venv / "bin" / "se-zoo-hub", "serve", "--root", root, "--tokens-file", tokens],
                                   stdout=out, stderr=subprocess.STDOUT, cwd=root.parent, env=_clean_env())
    deadline = time.monotonic() + timeout
    while True:
        endpoint = next((line for line in log.read_text().split("\n")[:-1] if line.startswith("http://")), None)
        if endpoint is not None:
            return process, endpoint
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"se-zoo-hub serve did not start:\n{log.read_text()}")
        time.sleep(0.05)


# Runs with this test's interpreter: the official client, its defaults (hf_xet uploads), a fresh HF_HOME.
_CLIENT = """
import json, sys
from huggingface_hub import HfApi, hf_hub_download
api = HfApi()
repo = api.create_repo("ops/torch-free").repo_id
api.upload_file(path_or_fileobj=sys.argv[1], path_in_repo="model.safetensors", repo_id=repo)
api.upload_file(path_or_fileobj=b"# torch-free\\n", path_in_repo="README.md", repo_id=repo)
print(json.dumps({"downloaded": hf_hub_download(repo, "model.safetensors"),
                  "files": sorted(api.list_repo_files(repo))}))
"""


@pytest.mark.slow
def test_torch_free_install_serves_the_official_client(registry_wheel, tmp_path):
    pytest.importorskip("hf_xet", reason="the client's default uploads go through hf_xet")
    venv = tmp_path / "venv"
    python = _venv(venv)
    _pip_install(python, registry_wheel)  # the dependencies come from the package index
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = _probe(python, elsewhere)
    assert probe["found"] == {name: False for name in MODEL_SIDE}
    assert not {"torch", "timm", "torchvision", "se-zoo", "safetensors", "numpy"} & set(probe["distributions"])
    assert {"se-zoo-registry", "starlette", "httpx2", "blake3"} <= set(probe["distributions"])
    assert probe["se_zoo"] is None  # a namespace package: no se_zoo/__init__.py and none of its lazy imports
    assert Path(probe["registry"]).is_relative_to(venv)
    # the catalogue ships in the wheel beside the package, so `se-zoo-hub mirror --tags` works here
    assert Path(probe["catalog"]).parent == Path(probe["registry"]).parents[2]
    assert probe["repos"] == _checkout_repos() and ["timm/seresnet50.a1_in1k", "main",
                                                    ["se_zoo_resnet50.a1_in1k"]] in probe["repos"]
    help_text = _run([venv / "bin" / "se-zoo-hub", "--help"], cwd=elsewhere, env=_clean_env())
    assert help_text.startswith("usage: se-zoo-hub") and "{serve,fsck,mirror,import}" in help_text

    root = tmp_path / "registry"
    process, endpoint = _serve(venv, root, tmp_path / "serve.log")
    try:
        payload = b"\0" + os.urandom(3 << 20)  # a NUL in the first 512 bytes: an LFS file, sent by Xet
        upload = tmp_path / "model.safetensors"
        upload.write_bytes(payload)
        env = {k: v for k, v in _clean_env().items() if not k.startswith(("HF_", "HUGGING_FACE"))}
        env.update(HF_ENDPOINT=endpoint, HF_TOKEN=WRITE_TOKEN, HF_HOME=str(tmp_path / "hf_home"),
                   HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
        result = json.loads(_run([sys.executable, "-c", _CLIENT, upload], cwd=elsewhere, env=env,
                                 timeout=300).splitlines()[-1])
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert result["files"] == ["README.md", "model.safetensors"]
    downloaded = Path(result["downloaded"]).read_bytes()
    assert hashlib.sha256(downloaded).digest() == hashlib.sha256(payload).digest()
    assert any(p.is_file() for p in (root / "xet").rglob("*")), "the upload did not go through Xet"
    _run([venv / "bin" / "se-zoo-hub", "fsck", "--root", root], cwd=elsewhere, env=_clean_env())  # exit 0: clean


@pytest.mark.slow
def test_registry_and_full_distribution_share_no_file(registry_wheel, tmp_path):
    main_wheel = _wheel(ROOT, "se-zoo", registry_wheel.parent)
    python = _venv(tmp_path / "venv")
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def located() -> "tuple[Path, Path]":
        """Where ``se_zoo.registry`` and the catalogue it reads come from, relative to site-packages."""
        probe = _probe(python, elsewhere)
        assert probe["repos"] == _checkout_repos()
        return (Path(probe["registry"]).parent.relative_to(site),
                Path(probe["catalog"]).resolve().relative_to(site.resolve()))

    def installed(dist: str) -> set:
        record = json.loads(_run([python, "-c", f"import importlib.metadata as m, json; print(json.dumps("
                                                f"[str(f) for f in m.files({dist!r})]))"]))
        return {f for f in record if ".dist-info/" not in f and "__pycache__" not in f}

    # --no-deps: which copy of se_zoo.registry imports is a question of files, not of dependencies.
    _pip_install(python, "--no-deps", "--no-index", registry_wheel, main_wheel)
    assert located() == (Path("se_zoo", "registry"), Path("se_zoo", "_weights"))  # se-zoo's package wins
    assert not installed("se-zoo") & installed("se-zoo-registry")
    _run([sys.executable, "-m", "pip", "--python", python, "uninstall", "-y", "se-zoo"], env=_clean_env())
    assert located() == (Path("_se_zoo_registry", "se_zoo", "registry"), Path("_se_zoo_registry", "weights"))
    _pip_install(python, "--no-deps", "--no-index", main_wheel)
    _run([sys.executable, "-m", "pip", "--python", python, "uninstall", "-y", "se-zoo-registry"], env=_clean_env())
    assert located() == (Path("se_zoo", "registry"), Path("se_zoo", "_weights"))
    assert all((site / f).is_file() for f in installed("se-zoo"))
