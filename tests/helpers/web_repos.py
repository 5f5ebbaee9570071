"""Helpers for the registry page tests: repos written straight into a ``Store``, an HTML probe, page reads."""
import json
import math
import re
import struct
import urllib.request
from html import unescape
from html.parser import HTMLParser
from typing import Dict, List, Optional, Tuple

from se_zoo.registry.store.storage import Store
from se_zoo.registry.web import CSP

SE_CARD = """---
license: apache-2.0
library_name: timm
pipeline_tag: image-classification
tags: [image-classification, timm, se-zoo]
datasets: [digits]
model-index:
- name: {name}
  results:
  - task: {{type: image-classification}}
    dataset: {{name: digits, type: digits}}
    metrics:
    - {{type: top1, value: {top1}, name: top1}}
    - {{type: top5, value: 99.5, name: top5}}
---

# Model card for {name}

- **Params (M):** {params}
"""


def metrics_lines(epochs: int = 5) -> bytes:
    """A ``metrics.jsonl`` as ``se-zoo train`` writes it, loss falling and top-1 rising."""
    return "".join(json.dumps({"epoch": e, "train_loss": 2.0 / e, "lr": 0.01, "val_loss": 2.2 / e,
                               "top1": 40.0 + 10 * e, "top5": 90.0 + e, "val_count": 100}) + "\n"
                   for e in range(1, epochs + 1)).encode()


def commit(store: Store, repo_id: str, files: Dict[str, bytes], title: str = "Upload", message: str = "",
           deleted: Tuple[str, ...] = ()) -> str:
    """Commit ``files`` (binary ones, with a NUL byte, as LFS) and delete ``deleted`` on ``main``."""
    namespace, name = repo_id.split("/")
    ops = [{"op": "add", "path": path, "sha256": store.put_bytes(data), "size": len(data), "lfs": b"\0" in data}
           for path, data in files.items()]
    ops += [{"op": "delete", "path": path} for path in deleted]
    return store.commit(namespace, name, "main", ops, title, message)


def se_repo(store: Store, repo_id: str, top1: float = 97.5, private: bool = False,
            architecture: str = "se_zoo_resnet18", params: float = 11.18) -> None:
    """A repo laid out as ``se-zoo train --push-to-hub`` leaves it (weights stand-in of 512 bytes)."""
    namespace, name = repo_id.split("/")
    store.create_repo(namespace, name, private)
    commit(store, repo_id, {
        "README.md": SE_CARD.format(name=name, top1=top1, params=params).encode(),
        "config.json": json.dumps({"architecture": architecture}).encode(),
        "model.safetensors": b"\0weights" * 64,
        "metrics.jsonl": metrics_lines(),
    }, title=f"Upload {name}")


OWN_SCRIPT = "/-/copy.js"
_ACTIVE = {"script", "iframe", "frame", "object", "embed", "base"}
_URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "data", "srcdoc"}


class Probe(HTMLParser):
    """Collects what could run in a page: script elements (but the pages' own file), ``on*`` attributes, script URLs."""

    def __init__(self, html: str):
        super().__init__()
        self.scripts: List[str] = []
        self.handlers: List[Tuple[str, str]] = []
        self.script_urls: List[str] = []
        self.tags: List[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "script" and attrs == [("src", OWN_SCRIPT), ("defer", None)]:
            return  # the pages' own script file (copy buttons), allowed by the CSP's script-src 'self'
        if tag in _ACTIVE or (tag == "meta" and any(k == "http-equiv" for k, _ in attrs)):
            self.scripts.append(tag)
        for key, value in attrs:
            if key.startswith("on"):
                self.handlers.append((tag, key))
            url = "".join((value or "").split()).lower()
            if key in _URL_ATTRS and url.startswith(("javascript:", "data:", "vbscript:")):
                self.script_urls.append(value)


def page_text(html: str) -> str:
    """The page's text with tags removed and entities decoded, whitespace collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def get_page(endpoint: str, path: str) -> str:
    """GET a page from a running registry, checking it carries the pages' Content-Security-Policy."""
    with urllib.request.urlopen(endpoint + path) as response:
        assert response.headers["Content-Security-Policy"] == CSP
        return response.read().decode()


def safetensors_bytes(tensors: Dict[str, Tuple[str, Tuple[int, ...], bytes]],
                      metadata: Optional[Dict[str, str]] = None) -> bytes:
    """A safetensors file from ``name -> (dtype, shape, raw little-endian bytes)``, in the order given."""
    header: Dict[str, object] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(raw for _, _, raw in tensors.values())


def f32(*values: float) -> bytes:
    """Little-endian float32 bytes of ``values``."""
    return struct.pack(f"<{len(values)}f", *values)


_SE_LAYOUT = (("conv1.weight", (64, 3, 7, 7)), ("bn1.weight", (64,)), ("bn1.bias", (64,)),
              ("layer1.0.conv1.weight", (64, 64, 3, 3)), ("layer1.0.conv2.weight", (64, 64, 3, 3)),
              ("layer1.0.se.fc1.weight", (4, 64, 1, 1)), ("layer1.0.se.fc2.weight", (64, 4, 1, 1)),
              ("layer2.0.conv1.weight", (128, 64, 3, 3)), ("layer2.0.downsample.0.weight", (128, 64, 1, 1)),
              ("layer2.0.se.fc1.weight", (8, 128, 1, 1)), ("layer2.0.se.fc2.weight", (128, 8, 1, 1)),
              ("bn_final.running_mean", (128,)), ("fc.weight", (1000, 128)), ("fc.bias", (1000,)))


def se_checkpoints() -> Tuple[bytes, bytes]:
    """An SE-ResNet-like safetensors file and a fine-tuned successor (torch-free, reproducible).

    The successor has a new 5-class head (``fc`` reshaped), small changes in the SE blocks and the
    last stage, ``bn_final.running_mean`` stored as F16, one tensor removed and one added.
    """
    import array

    from .safetensors_file import float32_bytes

    old, new = {}, {}
    for seed, (name, shape) in enumerate(_SE_LAYOUT):
        raw = float32_bytes(math.prod(shape), seed)
        old[name] = ("F32", shape, raw)
        if name == "layer2.0.downsample.0.weight":
            continue  # removed
        if name.startswith("fc."):
            shape = (5, 128) if name == "fc.weight" else (5,)
            new[name] = ("F32", shape, float32_bytes(math.prod(shape), 100 + seed))
        elif name == "bn_final.running_mean":
            values = array.array("f", raw)
            new[name] = ("F16", shape, struct.pack(f"<{len(values)}e", *values))
        elif ".se." in name or name.startswith("layer2"):
            values = array.array("f", raw)
            for i in range(0, len(values), 7):
                values[i] += 0.001 * (1 + i % 13) * (1 if i % 2 else -1)
            new[name] = ("F32", shape, values.tobytes())
        else:
            new[name] = old[name]
    new["layer2.0.se.gate.weight"] = ("F32", (128,), f32(*[1.0] * 128))
    meta = {"format": "pt"}
    return safetensors_bytes(old, meta), safetensors_bytes(new, {**meta, "fine_tuned_on": "digits"})
