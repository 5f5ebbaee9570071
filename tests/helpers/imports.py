"""Which third-party packages a source tree imports: the declared-dependency tests read it."""
import ast
import sys
from pathlib import Path
from typing import Dict, List


def third_party_imports(package: Path, root: Path) -> Dict[str, List[str]]:
    """Top-level names of the absolute imports under ``package`` that are neither stdlib nor se_zoo.

    Args:
        package: The folder to scan (every ``*.py`` below it).
        root: The folder the reported paths are relative to.

    Returns:
        ``{top-level module: [files importing it]}``.
    """
    found: Dict[str, List[str]] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for top in {name.split(".")[0] for name in names} - set(sys.stdlib_module_names) - {"se_zoo"}:
                found.setdefault(top, []).append(str(path.relative_to(root)))
    return found
