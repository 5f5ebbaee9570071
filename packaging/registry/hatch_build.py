"""Hatchling build hook for se-zoo-registry: ship ``se_zoo/registry`` from the repository's one copy.

In the repository the sources are ``../../se_zoo/registry``; an sdist carries them at
``se_zoo/registry`` so a wheel can be built from it alone. The sdist keeps that layout; the wheel
maps the package to ``_se_zoo_registry/se_zoo/registry`` and adds ``se_zoo_registry.pth``, whose
path line puts ``_se_zoo_registry`` on ``sys.path`` (see pyproject.toml). An editable install
adds the repository root to ``sys.path`` instead.
"""
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGE = Path("se_zoo", "registry")
WHEEL_DIR = "_se_zoo_registry"  # named in se_zoo_registry.pth


def registry_sources(root: Path) -> Path:
    """The ``se_zoo/registry`` folder to build from.

    Args:
        root: This project's folder (packaging/registry in the repository, or an unpacked sdist).

    Returns:
        The sdist's copy if there is one, else the repository's.

    Raises:
        FileNotFoundError: if neither exists.
    """
    for candidate in (root / PACKAGE, root.parents[1] / PACKAGE):
        if (candidate / "__init__.py").is_file():
            return candidate
    raise FileNotFoundError(f"se_zoo/registry: expected it in {root} (an sdist) or {root.parents[1]} (the "
                            "repository), found neither")


class RegistryFiles(BuildHookInterface):
    """Add every file of ``se_zoo/registry`` (no bytecode) to the sdist or wheel being built."""

    def initialize(self, version: str, build_data: dict) -> None:
        """Fill ``build_data["force_include"]`` for the current target (``sdist`` or ``wheel``).

        An editable install copies nothing: ``dev-mode-dirs`` puts the repository root on ``sys.path``.
        """
        if version == "editable":
            return
        root = Path(self.root)
        sources = registry_sources(root)
        prefix = PACKAGE if self.target_name == "sdist" else Path(WHEEL_DIR, PACKAGE)
        for path in sorted(sources.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                build_data["force_include"][str(path)] = str(prefix / path.relative_to(sources))
        if self.target_name == "wheel":
            build_data["force_include"][str(root / "se_zoo_registry.pth")] = "se_zoo_registry.pth"
