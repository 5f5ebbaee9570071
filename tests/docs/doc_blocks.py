"""The shell and Python blocks of README.md and docs/*.md, with the doctest directives written above them.

A fenced block tagged ``bash``/``sh``/``shell`` or ``python``/``py`` is run by
``tests/docs/test_docs.py``. An HTML comment on the line(s) right above a block
controls how:

- ``<!-- doctest: network -->``: needs the public network (or weights only it
  has): checked for syntax only;
- ``<!-- doctest: cuda -->``: needs GPUs: checked for syntax only;
- ``<!-- doctest: slow -->``: run in the slow set (``pytest -m slow``);
- ``sub="OLD|NEW"`` (with ``slow``, repeatable): run with ``OLD`` replaced by
  ``NEW`` — smaller settings for a heavy block, written next to it.

Blocks in other languages (``bibtex``, a plain file listing) are not run.
"""
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Tuple

from markdown_it import MarkdownIt

SHELL = ("bash", "sh", "shell")
PYTHON = ("python", "py")
_DIRECTIVE = re.compile(r"<!--\s*doctest:\s*(.*?)\s*-->", re.S)
_KINDS = ("network", "cuda", "slow")


@dataclass
class Block:
    """One runnable block of a Markdown file."""

    path: Path
    line: int  # 1-based line of the opening fence
    lang: str  # "shell" or "python"
    code: str
    kinds: Tuple[str, ...] = ()
    subs: List[Tuple[str, str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.path.name}:{self.line}"

    @property
    def syntax_only(self) -> bool:
        return "network" in self.kinds or "cuda" in self.kinds

    def runnable_code(self) -> str:
        """The code with the block's ``sub`` replacements applied; each must match.

        Raises:
            ValueError: if a replacement's ``OLD`` text is not in the block.
        """
        code = self.code
        for old, new in self.subs:
            if old not in code:
                raise ValueError(f"{self.id}: sub OLD text {old!r} is not in the block")
            code = code.replace(old, new)
        return code


def _directive(text: str, where: str) -> Tuple[Tuple[str, ...], List[Tuple[str, str]]]:
    kinds, subs = [], []
    for word in shlex.split(text):
        if word.startswith("sub="):
            old, sep, new = word[len("sub="):].partition("|")
            if not sep or not old:
                raise ValueError(f"{where}: sub must be \"OLD|NEW\", got {word!r}")
            subs.append((old, new))
        elif word in _KINDS:
            kinds.append(word)
        else:
            raise ValueError(f"{where}: doctest directive must be one of {_KINDS} or sub=\"OLD|NEW\", got {word!r}")
    return tuple(kinds), subs


def blocks(path: Path) -> List[Block]:
    """The runnable blocks of one Markdown file, in order.

    Args:
        path: A Markdown file.

    Returns:
        Its shell and Python blocks with their directives.

    Raises:
        ValueError: on a malformed directive, or a directive not followed by a runnable block.
    """
    tokens = MarkdownIt("commonmark").parse(path.read_text())
    found, pending = [], None
    for token in tokens:
        if token.type == "html_block" and _DIRECTIVE.search(token.content):
            pending = _directive(_DIRECTIVE.search(token.content).group(1), f"{path.name}:{token.map[0] + 1}")
            continue
        if token.type != "fence":
            if pending is not None:
                raise ValueError(f"{path.name}:{token.map[0] + 1 if token.map else '?'}: a doctest directive "
                                 "must stand right above a code block")
            continue
        lang = (token.info.split() or [""])[0]
        kind = "shell" if lang in SHELL else "python" if lang in PYTHON else None
        if kind is None:
            if pending is not None:
                raise ValueError(f"{path.name}:{token.map[0] + 1}: doctest directive above a {lang!r} block")
            continue
        kinds, subs = pending or ((), [])
        if subs and "slow" not in kinds:
            raise ValueError(f"{path.name}:{token.map[0] + 1}: sub= is for slow blocks only")
        found.append(Block(path, token.map[0] + 1, kind, token.content, kinds, subs))
        pending = None
    return found
