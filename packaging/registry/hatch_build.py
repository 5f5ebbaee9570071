"""Hatchling build hook for se-zoo-registry: ship the repository's one copy of what the registry needs.

That is the package ``se_zoo/registry`` and the pretrained catalogue ``weights/*.json``, which
``se-zoo-hub mirror --tags`` reads. In the repository both are two levels up (``../../``); an sdist
carries them at the same relative paths so a wheel can be built from it alone. The wheel puts them
under ``_se_zoo_registry/`` in the repository's layout (``se_zoo/registry``, ``weights``) and adds
``se_zoo_registry.pth``, whose path line puts ``_se_zoo_registry`` on ``sys.path`` (see
pyproject.toml). An editable install adds the repository root to ``sys.path`` instead.
"""
from pathlib import Path
from typing import Dict

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCES = {Path("se_zoo", "registry"): "**/*", Path("weights"): "*.json"}  # folder: the files it ships
WHEEL_DIR = "_se_zoo_registry"  # named in se_zoo_registry.pth


def source_files(root: Path, folder: Path, pattern: str) -> Dict[Path, Path]:
    """The files of one shipped folder, from an sdist's copy or else from the repository.

    Args:
        root: This project's folder (packaging/registry in the repository, or an unpacked sdist).
        folder: The folder, relative to the repository root: ``se_zoo/registry`` or ``weights``.
        pattern: Glob of the files to ship, relative to ``folder``.

    Returns:
        Each matching file (no bytecode) mapped to its path relative to ``folder``, sorted: the sdist's
        files if it has any, else the repository's.

    Raises:
        FileNotFoundError: if neither has any.
    """
    for candidate in (root / folder, root.parents[1] / folder):
        files = sorted(path for path in candidate.glob(pattern) if path.is_file() and path.suffix != ".pyc"
                       and "__pycache__" not in path.relative_to(candidate).parts)
        if files:
            return {path: path.relative_to(candidate) for path in files}
    raise FileNotFoundError(f"{folder}/{pattern}: expected files in {root / folder} (an sdist) or "
                            f"{root.parents[1] / folder} (the repository), found none")


class RegistryFiles(BuildHookInterface):
    """Add the files of ``SOURCES`` to the sdist or wheel being built."""

    def initialize(self, version: str, build_data: dict) -> None:
        """Fill ``build_data["force_include"]`` for the current target (``sdist`` or ``wheel``).

        An editable install copies nothing: ``dev-mode-dirs`` puts the repository root on ``sys.path``.
        """
        if version == "editable":
            return
        root = Path(self.root)
        prefix = Path() if self.target_name == "sdist" else Path(WHEEL_DIR)
        for folder, pattern in SOURCES.items():
            for path, relative in source_files(root, folder, pattern).items():
                build_data["force_include"][str(path)] = str(prefix / folder / relative)
        if self.target_name == "wheel":
            build_data["force_include"][str(root / "se_zoo_registry.pth")] = "se_zoo_registry.pth"
