"""Fill the ``sha256`` pins of the ``weights/`` catalogue from the files the tags load.

Usage::

    python scripts/pin_weights.py                                # every unpinned record
    python scripts/pin_weights.py --tag se_zoo_resnet50.a1_in1k  # some records
    python scripts/pin_weights.py --check                        # verify the pins, write nothing

Each record's file (``hf_hub_filename`` of ``hf_hub_id``, ``model.safetensors``
when unset) is downloaded with huggingface_hub — from ``HF_ENDPOINT``, so a
registry mirror works as well as the public Hub — and its sha256 is written
into the record's ``"sha256": null``. Only that value changes in the file; a
record already pinned to another hash is reported, never overwritten.
The catalogue ships unpinned because pinning needs the files, that is network
access to the Hub (or a mirror); run this when refreshing the catalogue.
"""
import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]


def file_sha256(repo: str, filename: str) -> str:
    """Download one Hub file (cache honoured) and return its sha256.

    Args:
        repo: ``namespace/name``, optionally ``@revision``.
        filename: The file in the repo.

    Returns:
        The sha256 hex digest.
    """
    from huggingface_hub import hf_hub_download

    repo_id, _, revision = repo.partition("@")
    digest = hashlib.sha256()
    with open(hf_hub_download(repo_id, filename, revision=revision or None), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _set_pin(text: str, tag: str, sha256: str) -> str:
    """``text`` with the ``"sha256": null`` of record ``tag`` replaced; nothing else changes."""
    start = text.index(f'"tag": {json.dumps(tag)}')
    end = text.find('"tag": ', start + 1)
    end = len(text) if end < 0 else end
    match = re.compile(r'"sha256": null').search(text, start, end)
    if match is None:
        raise ValueError(f"record {tag} has no '\"sha256\": null' to fill")
    return text[:match.start()] + f'"sha256": "{sha256}"' + text[match.end():]


def pin(catalog: Path, tags: Optional[Sequence[str]] = None, check: bool = False) -> Dict[str, List[str]]:
    """Fill (or, with ``check``, verify) the sha256 pins of a catalogue directory.

    Args:
        catalog: Directory of ``<family>.json`` files.
        tags: Records to handle (default: all).
        check: Verify existing pins instead of writing.

    Returns:
        ``{"pinned": [...], "ok": [...], "mismatch": [...], "unpinned": [...]}`` tag lists.

    Raises:
        ValueError: if a requested tag is in no file.
    """
    report: Dict[str, List[str]] = {"pinned": [], "ok": [], "mismatch": [], "unpinned": []}
    seen = set()
    for path in sorted(catalog.glob("*.json")):
        text = original = path.read_text()
        for record in json.loads(text)["records"]:
            tag = record["tag"]
            if tags and tag not in tags:
                continue
            seen.add(tag)
            actual = file_sha256(record["hf_hub_id"], record.get("hf_hub_filename") or "model.safetensors")
            if record.get("sha256"):
                report["ok" if record["sha256"].lower() == actual else "mismatch"].append(tag)
            elif check:
                report["unpinned"].append(tag)
            else:
                text = _set_pin(text, tag, actual)
                report["pinned"].append(tag)
        if text != original:
            json.loads(text)  # still valid JSON
            path.write_text(text)
    missing = sorted(set(tags or ()) - seen)
    if missing:
        raise ValueError(f"tags must name catalogue records, got unknown {missing}")
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status (1 on a mismatch)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, default=ROOT / "weights", help="catalogue directory")
    parser.add_argument("--tag", action="append", help="a record to handle (repeatable; default: all)")
    parser.add_argument("--check", action="store_true", help="verify the pins, write nothing")
    args = parser.parse_args(argv)
    try:
        report = pin(args.catalog, args.tag, args.check)
    except ValueError as exc:
        print(f"pin_weights: error: {exc}", file=sys.stderr)
        return 1
    for status, tags in report.items():
        for tag in tags:
            print(f"{status:9s} {tag}")
    return 1 if report["mismatch"] else 0


if __name__ == "__main__":
    sys.exit(main())
