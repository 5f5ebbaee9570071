"""The registry's tests collect without torch, so they run in the registry's torch-free install."""
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

_COLLECT = """
import json, sys
import pytest

class Probe:
    def pytest_collection_finish(self, session):
        self.count = len(session.items)
        self.loaded = sorted(m for m in ("torch", "timm", "torchvision", "se_zoo.models") if m in sys.modules)

probe = Probe()
code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", sys.argv[1]], plugins=[probe])
print(json.dumps({"code": int(code), "count": probe.count, "loaded": probe.loaded}))
"""


def test_collecting_the_registry_tests_imports_no_torch():
    done = subprocess.run([sys.executable, "-c", _COLLECT, str(HERE)], capture_output=True, text=True, timeout=300,
                          cwd=HERE.parents[1], env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, done.stdout[-3000:]
    assert result["count"] > 50  # the folder's tests were collected
    assert result["loaded"] == []
