"""How much a se-zoo command prints: its own progress by default, third-party chatter only with ``-v``.

Libraries se-zoo builds on log at INFO what a user of a command does not need
to see (httpx's ``HTTP Request:`` line for every call, timm's "Loaded ... from
checkpoint"). :func:`configure` shows se-zoo's own INFO lines (per-epoch
metrics) and only warnings and errors of everything else; ``-v`` adds every
INFO line, ``-vv`` DEBUG; ``-q`` shows errors only and hides progress bars.
"""
import logging
import os
import sys

__all__ = ["configure"]


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (it may be redirected later)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def configure(verbosity: int = 0, *, primary: bool = True) -> None:
    """Set up logging and progress bars for a command-line run.

    Args:
        verbosity: ``-1`` quiet (errors only, no progress bars), ``0`` default
            (se-zoo's INFO, others' warnings; huggingface_hub's progress bars on a
            terminal only), ``1`` every INFO line, ``2`` and more DEBUG.
        primary: False on the non-primary processes of a ``torchrun`` job,
            which then log warnings and errors only.

    Raises:
        TypeError: if ``verbosity`` is not an int.
    """
    if not isinstance(verbosity, int) or isinstance(verbosity, bool):
        raise TypeError(f"verbosity must be an int, got {verbosity!r}")
    others = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(max(verbosity, -1), logging.DEBUG)
    own = logging.WARNING if verbosity < 0 or not primary else min(others, logging.INFO)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)  # configured again: replace our handler, keep anybody else's
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(others)
    logging.getLogger("se_zoo").setLevel(own)
    if verbosity < 0 or (verbosity == 0 and not sys.stderr.isatty()):  # bars in a log or a pipe are noise
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # read when huggingface_hub is imported
        if "huggingface_hub" in sys.modules:  # imported already: tell it; else spare its import (`hub serve`)
            from huggingface_hub.utils import disable_progress_bars

            disable_progress_bars()
