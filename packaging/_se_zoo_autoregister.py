"""Registers se-zoo's models with timm the moment timm is imported.

Installed as a top-level module and imported by ``se_zoo_autoregister.pth`` at
interpreter start. It only installs an import hook (no torch, no timm, no
se_zoo import), so programs that never import timm pay nothing. When ``timm``
finishes importing, the hook imports ``se_zoo``, which registers its
architectures, so unmodified timm code can create ``se_zoo_*`` models and
``hf-hub:`` repos whose config names one. Set ``SE_ZOO_AUTOREGISTER=0`` to
switch it off.
"""
import os
import sys

_OFF = {"0", "false", "no", "off"}


class _TimmImportHook:
    """Meta-path finder that wraps timm's loader to import se_zoo right after timm."""

    def find_spec(self, name, path=None, target=None):
        if name != "timm":
            return None
        from importlib.util import find_spec  # here, not at interpreter start

        sys.meta_path.remove(self)
        spec = find_spec(name)  # the other finders', so editable or zipped timm installs work too
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_timm = spec.loader.exec_module

        def exec_module(module):
            exec_timm(module)
            try:
                import se_zoo  # noqa: F401  (registers the models)
            except Exception as exc:  # never break timm because of se-zoo
                import warnings
                warnings.warn(f"se-zoo auto-registration failed: {exc!r}; "
                              f"import se_zoo explicitly to see the error", RuntimeWarning, stacklevel=2)

        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    """Install the hook unless disabled or timm is already imported."""
    if os.environ.get("SE_ZOO_AUTOREGISTER", "1").strip().lower() in _OFF or "timm" in sys.modules:
        return
    if not any(isinstance(f, _TimmImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _TimmImportHook())


install()
