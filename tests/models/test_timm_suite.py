"""timm's own model tests (``tests/test_models.py`` of the installed timm release) on se-zoo's models.

The test file comes unedited from timm's source distribution on the package
index (``pip download timm==<installed> --no-deps --no-binary :all:``), cached
in pytest's cache directory so it is fetched once, and runs in a subprocess
next to ``tests/models/timm_suite/conftest_template.py``, which restricts it to
se-zoo's architectures. The default run covers one architecture (se_zoo_resnet18);
``-m slow`` runs one of each family, then all of them. Pretrained tests (network) are not selected.
"""
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
import timm

ROOT = Path(__file__).resolve().parents[2]
CONFTEST = Path(__file__).resolve().parent / "timm_suite" / "conftest_template.py"
ONE_PER_FAMILY = ("se_zoo_resnet18", "se_zoo_legacy_seresnet18", "se_zoo_mobilenetv1_050", "se_zoo_mobilenetv2_050")
# The default run: these tests of test_models.py on one architecture per family.
TESTS = (
    "test_model_forward", "test_model_backward", "test_model_default_cfgs", "test_model_forward_torchscript",
    "test_model_forward_features", "test_model_forward_intermediates_features", "test_model_forward_intermediates",
    "test_model_forward_fx", "test_model_backward_fx", "test_model_forward_fx_torchscript",
)
# The slow run: every test that applies to untrained models (the pretrained ones need the network).
ALL_UNTRAINED = "not pretrained and not test_model_inference"


def _fetch_test_file(dest: Path) -> None:
    """Extract ``tests/test_models.py`` of the installed timm's sdist into ``dest``, or skip."""
    version = timm.__version__
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", f"timm=={version}", "--no-deps", "--no-binary", ":all:",
                 "-d", tmp, "-q"],
                check=True, capture_output=True, text=True, timeout=300)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"pip could not download timm {version}'s sdist from the package index: "
                        f"{getattr(exc, 'stderr', '') or exc}")
        (sdist,) = Path(tmp).glob(f"timm-{version}.tar.gz")
        with tarfile.open(sdist) as archive:
            member = archive.extractfile(f"timm-{version}/tests/test_models.py")
            dest.write_bytes(io.BytesIO(member.read()).getvalue())


@pytest.fixture(scope="session")
def timm_test_file(request, tmp_path_factory) -> Path:
    name = f"timm-{timm.__version__}-tests"
    cache = getattr(request.config, "cache", None)  # None with -p no:cacheprovider: fetched per session
    cached = (cache.mkdir(name) if cache else tmp_path_factory.mktemp(name)) / "test_models.py"
    if not cached.is_file():
        _fetch_test_file(cached)
    return cached


def run_timm_suite(test_file: Path, workdir: Path, models: str, select: str, timeout: int) -> dict:
    """Run timm's test file restricted to ``models``; the outcome counts per (test, model).

    Args:
        test_file: timm's ``test_models.py``.
        workdir: An empty directory to run in.
        models: Comma-separated name patterns of the architectures to test.
        select: pytest ``-k`` expression choosing the tests.
        timeout: Seconds before the run is abandoned.

    Returns:
        ``{"outcomes": Counter of (test, model, outcome), "output": str}``.
    """
    (workdir / "test_models.py").write_bytes(test_file.read_bytes())
    (workdir / "conftest.py").write_bytes(CONFTEST.read_bytes())
    (workdir / "pytest.ini").write_text(
        "[pytest]\nfilterwarnings =\n    ignore::pytest.PytestUnknownMarkWarning\n")
    env = {**os.environ, "SE_ZOO_TIMM_SUITE_MODELS": models,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    report = workdir / "report.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(workdir / "pytest.ini"),
         "--rootdir", str(workdir), f"--junitxml={report}", "-k", select, str(workdir / "test_models.py")],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    outcomes: Counter = Counter()
    for case in ET.parse(report).getroot().iter("testcase"):
        test, _, params = case.get("name").partition("[")
        model = next((p.split(".")[0] for p in params.rstrip("]").split("-") if p.startswith("se_zoo_")), "?")
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[(test, model, kinds[0] if kinds else "passed")] += 1
    return {"outcomes": outcomes, "output": proc.stdout[-6000:] + proc.stderr[-3000:]}


def _check(result: dict, models, tests=TESTS) -> None:
    outcomes = result["outcomes"]
    bad = {key: n for key, n in outcomes.items() if key[2] in ("failure", "error")}
    assert not bad, f"{bad}\n{result['output']}"
    for model in models:
        for test in tests:
            assert outcomes[(test, model, "passed")] >= 1, f"{test}[{model}] did not pass: {result['output']}"


def test_timm_model_tests_one_architecture(timm_test_file, tmp_path):
    result = run_timm_suite(timm_test_file, tmp_path, ONE_PER_FAMILY[0], " or ".join(TESTS), timeout=1800)
    _check(result, ONE_PER_FAMILY[:1])


@pytest.mark.slow  # ~40 s; the default run takes the first of them
def test_timm_model_tests_one_per_family(timm_test_file, tmp_path):
    result = run_timm_suite(timm_test_file, tmp_path, ",".join(ONE_PER_FAMILY), " or ".join(TESTS), timeout=1800)
    _check(result, ONE_PER_FAMILY)


@pytest.mark.slow
def test_timm_model_tests_all_architectures(timm_test_file, tmp_path):
    models = timm.list_models("se_zoo_*")
    assert len(models) == 23
    result = run_timm_suite(timm_test_file, tmp_path, "se_zoo_*", ALL_UNTRAINED, timeout=6 * 3600)
    _check(result, models, TESTS + ("test_prune_intermediate_layers_contract",))
