"""Run a callback once timm is imported (now, if it already is), without importing timm.

``import se_zoo`` uses it to register the models with timm's registry, so the
package itself stays torch-free: the registry server and ``se-zoo --help`` import
``se_zoo`` without paying for torch, while any program that reaches timm finds
the ``se_zoo_*`` architectures registered.
"""
import sys
from importlib.util import find_spec
from typing import Callable, List

_callbacks: List[Callable[[], None]] = []


class _AfterTimmImport:
    """Meta-path finder that wraps timm's loader to run the callbacks right after timm."""

    def find_spec(self, name, path=None, target=None):
        if name != "timm":
            return None
        sys.meta_path.remove(self)
        spec = find_spec(name)  # the other finders', so editable or zipped timm installs work too
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_timm = spec.loader.exec_module

        def exec_module(module):
            exec_timm(module)
            _run_callbacks()

        spec.loader.exec_module = exec_module
        return spec


def _initializing(name: str) -> bool:
    """Whether module ``name`` is being executed right now (imported, not yet complete)."""
    return bool(getattr(getattr(sys.modules.get(name), "__spec__", None), "_initializing", False))


def _run_callbacks(wait_for_layers: bool = True) -> None:
    # se_zoo.layers imports timm; registering the models then would import se_zoo.layers half-done,
    # so while it initializes the callbacks wait for its last line (run_pending)
    if wait_for_layers and _initializing("se_zoo.layers"):
        return
    while _callbacks:
        _callbacks.pop(0)()


def run_pending() -> None:
    """Run the callbacks deferred while ``se_zoo.layers`` was importing timm (its last line calls this)."""
    if "timm" in sys.modules:
        _run_callbacks(wait_for_layers=False)


def after_timm_import(callback: Callable[[], None]) -> None:
    """Call ``callback`` as soon as ``timm`` has been imported.

    Args:
        callback: A function without arguments. It runs now if timm is already
            imported, else right after the first ``import timm`` completes.
    """
    _callbacks.append(callback)
    if "timm" in sys.modules:
        _run_callbacks(wait_for_layers=False)
    elif not any(isinstance(f, _AfterTimmImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterTimmImport())
