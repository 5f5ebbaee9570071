"""The registry's input limits and the checks that enforce them, in one place.

Every handler whose work grows with its input is bounded by one of the caps below; a request over a
cap gets a 413 (size) or 400 (shape) whose message names the cap, so a client knows what to change.
The numbers are chosen to stay well above what the official client sends for real repositories.
Every ``MAX_*`` constant of the registry is defined here, and docs/hub.md's limits table is
generated from ``DOCUMENTED`` by ``limits_table()`` (``python -m se_zoo.registry.limits``).
"""
import json
import re
import sys
import unicodedata
from typing import Any, Mapping, Optional, Tuple, Union

MAX_JSON_BODY = 2 * 1024 * 1024  # a JSON request body (preupload, batch, paths-info, ...)
MAX_JSON_DEPTH = 64  # nesting of arrays and objects in a JSON body (the client's are at most 5 deep)
MAX_NDJSON_LINE = 32 * 1024 * 1024  # a regular file is at most 10 MiB, about 14 MiB in base64
MAX_BATCH_OBJECTS = 1000  # objects in one LFS batch request
MAX_PATHS_INFO = 1000  # paths in one paths-info request
FAST_PATHS_INFO_BODY = 16 * 1024  # paths-info bodies up to this size skip the per-client queue
# tree listings: entries per page, the Hub's (huggingface_hub 2.4, HfApi._iter_repo_tree_pages: "pagination is
# capped by the Hub (1000 entries per page, 50 when `expand=True`) and is cursor-based")
MAX_TREE_PAGE = 1000
MAX_TREE_EXPAND_PAGE = 50
MAX_PREUPLOAD_FILES = 1000  # files announced in one preupload request (the client sends 256)
MAX_COMMIT_OPERATIONS = 100_000  # operations in one commit
MAX_YAML_CONTENT = 1024 * 1024  # README text sent to validate-yaml
MAX_YAML_BODY = 8 * 1024 * 1024  # its JSON request body (escapes make it larger than the text)
MAX_YAML_METADATA = 256 * 1024  # its '---' metadata block
FAST_YAML_BODY = 32 * 1024  # validate-yaml bodies up to this size are parsed in a thread, not queued
MAX_YAML_ALIASES = 100  # '*alias' references in a metadata block (alias expansion is the costly part)
MAX_HEADERS = 100  # request headers (uvicorn caps their total size, see HEADER_BYTES)
HEADER_BYTES = 64 * 1024  # request headers in all (the server also caps a head still arriving, see app.py)
MAX_INT_DIGITS = 19  # numeric query/path parameters: up to 10**19 - 1, no unicode digits
DEFAULT_MAX_FILE_SIZE = 50 * 1000**3  # the Hub's cap for one LFS file
MAX_IMPORT_BODY = 64 * 1024 * 1024  # a mirrored commit's description (POST .../mirror)
MAX_CHUNK_SIZE = 128 * 1024  # Xet: the client's hard limit on an uncompressed chunk
MAX_XORB_SIZE = 64 * 1024 * 1024 + 1024 * 1024  # Xet: 64 MiB of chunk records, plus room for a footer
MAX_SHARD_SIZE = 64 * 1024 * 1024  # Xet: one shard
MAX_FORM_BYTES = 8 * 1024  # the web login form
MAX_TEXT_BYTES = 1024 * 1024  # pages: a file shown as text (larger ones are offered for download only)
MAX_CARD_BYTES = 1024 * 1024  # pages: README and config.json read for a card (cut here before rendering)
MAX_METRICS_BYTES = 4 * 1024 * 1024  # pages: metrics.jsonl read for the training curves
MAX_MARKERS = 60  # pages: curve points get a hover marker (with a <title>) up to this many epochs
MAX_CARD_LINE_CHARS = 20_000  # pages: a card line longer than this is cut (with a note on the page)
MAX_CARD_TABLE_ROWS = 500  # pages: rows of a card table shown (the rest cut, with a note)
MAX_CARD_TABLE_COLUMNS = 64  # pages: columns of a card table shown (the rest cut, with a note)
MAX_HIGHLIGHT_CHARS = 256 * 1024  # pages: a card's fenced code highlighted up to this many characters
MAX_HISTORY_SCAN = 1000  # pages: commits walked to find each file's last change
MAX_TEXT_PREVIEW = 256 * 1024  # pages: the first bytes of a text file shown with line numbers (the rest: raw link)
MAX_SAFETENSORS_HEADER = 16 * 1024 * 1024  # pages: a safetensors header read for the viewer and the diffs
MAX_TENSOR_ROWS = 2000  # pages: tensors listed by the safetensors viewer and per file of a commit's diff
MAX_TENSOR_DIFF_BYTES = 256 * 1024 * 1024  # pages: tensor bytes read (both sides) to compare values, per commit
MAX_DIFF_TEXT_BYTES = 256 * 1024  # pages: each side of a text file diffed on a commit page
MAX_DIFF_LINES = 2000  # pages: lines of one file's unified diff shown
MAX_DIFF_FILES = 100  # pages: files of one commit shown with their diff

# (what, constant, kind) for docs/hub.md; kind is "bytes", "count" or "digits"
DOCUMENTED: Tuple[Tuple[str, str, str], ...] = (
    ("one file (default of `--max-file-size`; the Hub's LFS cap)", "DEFAULT_MAX_FILE_SIZE", "bytes"),
    ("JSON request body (preupload, LFS batch, paths-info, settings, ...)", "MAX_JSON_BODY", "bytes"),
    ("JSON request body: nesting of arrays and objects", "MAX_JSON_DEPTH", "count"),
    ("one NDJSON commit line (a regular file in base64)", "MAX_NDJSON_LINE", "bytes"),
    ("LFS batch objects", "MAX_BATCH_OBJECTS", "count"),
    ("preupload files", "MAX_PREUPLOAD_FILES", "count"),
    ("paths-info paths", "MAX_PATHS_INFO", "count"),
    ("tree listing: entries per page (`limit` asks for fewer)", "MAX_TREE_PAGE", "count"),
    ("tree listing with `expand=true`: entries per page", "MAX_TREE_EXPAND_PAGE", "count"),
    ("commit operations", "MAX_COMMIT_OPERATIONS", "count"),
    ("`validate-yaml` request body", "MAX_YAML_BODY", "bytes"),
    ("`validate-yaml` README text", "MAX_YAML_CONTENT", "bytes"),
    ("`validate-yaml` metadata block", "MAX_YAML_METADATA", "bytes"),
    ("`validate-yaml` YAML aliases", "MAX_YAML_ALIASES", "count"),
    ("request headers: count", "MAX_HEADERS", "count"),
    ("request headers: total bytes", "HEADER_BYTES", "bytes"),
    ("numeric parameters (`limit`, `p`, `Range`, `size`, `expires`): ASCII digits", "MAX_INT_DIGITS", "digits"),
    ("mirrored commit description (`se-zoo hub mirror`/`import` into a running registry)", "MAX_IMPORT_BODY",
     "bytes"),
    ("Xet chunk, uncompressed", "MAX_CHUNK_SIZE", "bytes"),
    ("Xet xorb", "MAX_XORB_SIZE", "bytes"),
    ("Xet shard", "MAX_SHARD_SIZE", "bytes"),
    ("web login form", "MAX_FORM_BYTES", "bytes"),
    ("pages: a file shown as text", "MAX_TEXT_BYTES", "bytes"),
    ("pages: README / `config.json` read for a card", "MAX_CARD_BYTES", "bytes"),
    ("pages: `metrics.jsonl` read for the curves", "MAX_METRICS_BYTES", "bytes"),
    ("pages: epochs with hover markers on a curve", "MAX_MARKERS", "count"),
    ("pages: characters of a card line (longer ones cut)", "MAX_CARD_LINE_CHARS", "count"),
    ("pages: rows of a card table", "MAX_CARD_TABLE_ROWS", "count"),
    ("pages: columns of a card table", "MAX_CARD_TABLE_COLUMNS", "count"),
    ("pages: characters of a card's code highlighted", "MAX_HIGHLIGHT_CHARS", "count"),
    ("pages: commits walked to find a file's last change", "MAX_HISTORY_SCAN", "count"),
    ("pages: the start of a text file shown (the rest behind the raw link)", "MAX_TEXT_PREVIEW", "bytes"),
    ("pages: a safetensors header read", "MAX_SAFETENSORS_HEADER", "bytes"),
    ("pages: tensors listed per safetensors file", "MAX_TENSOR_ROWS", "count"),
    ("pages: tensor bytes compared on one commit page (both sides)", "MAX_TENSOR_DIFF_BYTES", "bytes"),
    ("pages: each side of a text file diffed", "MAX_DIFF_TEXT_BYTES", "bytes"),
    ("pages: lines of one file's diff", "MAX_DIFF_LINES", "count"),
    ("pages: files of one commit shown with their diff", "MAX_DIFF_FILES", "count"),
)

_ASCII_INT = re.compile(rf"[0-9]{{1,{MAX_INT_DIGITS}}}")
# explicit directional formatting characters (Unicode bidi algorithm, "Trojan Source")
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_SIZE_UNITS = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
               "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4}


class LimitError(ValueError):
    """An input over a cap or of the wrong shape; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status

    def __reduce__(self):  # keep the status when raised in the helper process
        return (type(self), (str(self), self.status))


def ascii_int(value: Optional[str], what: str) -> int:
    """Parse a non-negative integer written in ASCII digits.

    Args:
        value: The text, e.g. a query parameter (``None`` when absent).
        what: The parameter's name, for the error message.

    Returns:
        The integer.

    Raises:
        LimitError: if ``value`` is missing, has anything but ``0-9`` (``str.isdigit`` would accept
            ``'²'``) or more than ``MAX_INT_DIGITS`` digits.
    """
    if value is None or not _ASCII_INT.fullmatch(value):
        shown = value if value is None or len(value) <= 40 else value[:40] + "..."
        raise LimitError(f"Invalid {what} {shown!r}: expected a non-negative integer of at most "
                         f"{MAX_INT_DIGITS} ASCII digits.")
    return int(value)


def int_param(params: Mapping[str, str], name: str, default: Optional[int] = None) -> Optional[int]:
    """The numeric query or path parameter ``name``: the one parser of every route's numbers.

    Args:
        params: The request's query (or path) parameters.
        name: The parameter's name.
        default: What an absent parameter is.

    Returns:
        The integer, or ``default`` when ``params`` lacks ``name``.

    Raises:
        LimitError: (400, naming the parameter) if it is not ASCII digits within ``MAX_INT_DIGITS``.
    """
    value = params.get(name)
    return default if value is None else ascii_int(value, name)


def load_json(data: Union[bytes, str], what: str = "Request body") -> Any:
    """Parse JSON whose arrays and objects nest at most ``MAX_JSON_DEPTH`` deep.

    Args:
        data: The JSON text.
        what: What it is, for the error message.

    Returns:
        The parsed value.

    Raises:
        LimitError: (400, naming ``MAX_JSON_DEPTH``) if it nests deeper.
        ValueError: if it is not valid JSON (``json.JSONDecodeError``).
    """
    try:
        value = json.loads(data)
    except RecursionError:  # the parser gave up long past the cap
        value = None
        too_deep = True
    else:
        too_deep = _nests_deeper(value, MAX_JSON_DEPTH)
    if too_deep:
        raise LimitError(f"{what} nests arrays and objects deeper than the limit of {MAX_JSON_DEPTH} levels.")
    return value


def _nests_deeper(value: Any, cap: int) -> bool:
    stack = [(value, 1)]
    while stack:  # iterative: a deep value must not exhaust the interpreter's stack here either
        item, depth = stack.pop()
        if not isinstance(item, (dict, list)):
            continue
        if depth > cap:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def check_count(count: int, cap: int, what: str) -> None:
    """Raise ``LimitError`` (400) if ``count`` items exceed ``cap``; the message names both."""
    if count > cap:
        raise LimitError(f"Too many {what}: {count} given, the limit is {cap} per request.")


def check_size(size: int, cap: int, what: str) -> None:
    """Raise ``LimitError`` (413) if ``size`` bytes exceed ``cap``; the message names both."""
    if size > cap:
        raise LimitError(f"{what} is {size} bytes, over the limit of {cap} bytes.", status=413)


def check_headers(headers: Any) -> Optional[str]:
    """The reason to refuse a request's headers (too many, or too large in all), or ``None``.

    The server's protocol (``se_zoo.registry.app``) bounds what is buffered while a request head
    arrives; a head that arrives whole is checked here.

    Args:
        headers: The ASGI ``scope["headers"]`` list of ``(name, value)`` pairs.
    """
    if len(headers) > MAX_HEADERS:
        return f"Too many request headers: {len(headers)} given, the limit is {MAX_HEADERS}."
    size = sum(len(name) + len(value) + 4 for name, value in headers)
    if size > HEADER_BYTES:
        return f"Request headers are {size} bytes, over the limit of {HEADER_BYTES} bytes."
    return None


def unsafe_character(text: str) -> Optional[str]:
    """The first character of ``text`` a name may not contain, described, or ``None``.

    Refused: control characters (Unicode category ``Cc``), surrogates and explicit bidirectional
    formatting characters, which make a name display as something else than it is.
    """
    for ch in text:
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs") or ch in _BIDI_CONTROLS:
            return f"U+{ord(ch):04X} ({unicodedata.name(ch, category)})"
    return None


def is_nfc(text: str) -> bool:
    """Whether ``text`` is in Unicode normalization form C (so one name has one spelling)."""
    return unicodedata.is_normalized("NFC", text)


def parse_size(text: str) -> int:
    """Parse a byte size such as ``"50GB"``, ``"512MiB"`` or ``"1000"``.

    Args:
        text: Digits followed by an optional unit among B, KB, MB, GB, TB (powers of 1000) and
            KiB, MiB, GiB, TiB (powers of 1024), case-insensitive.

    Returns:
        The size in bytes.

    Raises:
        ValueError: if the text is not of that form (the message names it).
    """
    match = re.fullmatch(r"\s*([0-9]{1,15})\s*([A-Za-z]{0,3})\s*", text or "")
    unit = match.group(2).upper() if match else None
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(f"Invalid size {text!r}: expected digits and an optional unit among "
                         "B, KB, MB, GB, TB, KiB, MiB, GiB, TiB (e.g. 50GB).")
    return int(match.group(1)) * _SIZE_UNITS[unit]



def _shown(value: int, kind: str) -> str:
    if kind == "count":
        return f"{value:,}"
    if kind == "digits":
        return f"at most {value}"
    if value % 1000**3 == 0:
        return f"{value // 1000**3} GB"
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if value >= factor and value % factor == 0:
            return f"{value // factor} {unit}"
    return f"{value:,} bytes"


def limits_table() -> str:
    """docs/hub.md's limits table (Markdown), generated from ``DOCUMENTED`` and the constants' values.

    Returns:
        The table, one row per documented limit plus the namespace quota, ending with a newline.
    """
    rows = ["| What | Limit | Constant |", "|---|---|---|",
            "| one namespace (`--quota`, e.g. `100GB`) | unlimited unless given; history counts | |"]
    module = sys.modules[__name__]
    rows += [f"| {what} | {_shown(getattr(module, name), kind)} | `{name}` |" for what, name, kind in DOCUMENTED]
    return "\n".join(rows) + "\n"


TABLE_START = "<!-- limits table: generated by `python -m se_zoo.registry.limits --write docs/hub.md` -->\n"
TABLE_END = "<!-- end of the generated limits table -->"


def with_limits_table(document: str) -> str:
    """``document`` with the text between ``TABLE_START`` and ``TABLE_END`` replaced by ``limits_table()``.

    Args:
        document: A Markdown document holding both markers (docs/hub.md).

    Returns:
        The document with the current table.

    Raises:
        ValueError: if a marker is missing.
    """
    start, end = document.find(TABLE_START), document.find(TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"document: expected the markers {TABLE_START.strip()!r} and {TABLE_END!r} around "
                         "the limits table, found none or only one.")
    return document[: start + len(TABLE_START)] + limits_table() + document[end:]


def main(argv: Optional[list] = None) -> int:
    """Print the limits table, or with ``--write PATH`` rewrite it inside that Markdown file.

    Returns:
        The exit status (0).
    """
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--write"] and len(args) == 2:
        with open(args[1], encoding="utf-8") as f:
            document = f.read()
        with open(args[1], "w", encoding="utf-8") as f:
            f.write(with_limits_table(document))
    else:
        print(limits_table(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
