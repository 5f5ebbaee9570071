"""An index of one commit's tree: its folders and their ids, built once per commit and cached.

``paths-info`` and ``tree`` look paths up here instead of scanning every file for every path asked,
so their cost grows with the answer, not with answer x repository size; a page of a tree listing
is a slice of a list built once.
"""
import hashlib
import threading
from collections import OrderedDict
from typing import Any, Dict, List, Tuple

from .storage import lfs_pointer


class TreeIndex:
    """The files of one commit plus every folder, with the folder ids the Hub reports.

    A folder's id is the sha1 over ``path\\0oid\\n`` of every file under it, in path order.
    ``order`` holds every path in the order of a recursive listing of the root (each folder before its
    contents), so the recursive listing of any folder is one slice of it (``spans``): a page of a listing
    costs what the page holds, whatever the size of the tree.

    Args:
        files: The commit's ``files`` mapping (path to ``{"sha256", "size", "oid", "lfs"}``).
    """

    def __init__(self, files: Dict[str, Dict[str, Any]]):
        self.files = files
        digests: Dict[str, Any] = {}
        self.children: Dict[str, List[str]] = {"": []}  # folder ("" = root) -> direct entries
        for path in sorted(files):
            line = f"{path}\0{files[path]['oid']}\n".encode()
            parts = path.split("/")
            for depth in range(1, len(parts)):
                folder = "/".join(parts[:depth])
                if folder not in digests:
                    digests[folder] = hashlib.sha1()
                    self.children.setdefault(folder, [])
                    self.children["/".join(parts[: depth - 1])].append(folder)
                digests[folder].update(line)
            self.children["/".join(parts[:-1])].append(path)
        self.folders = {folder: digest.hexdigest() for folder, digest in digests.items()}
        self.order: List[str] = []
        self.spans: Dict[str, Tuple[int, int]] = {}  # folder -> [start, end) of its contents in ``order``
        stack: List[Tuple[str, bool]] = [("", True)]  # (path, entering); leaving a folder closes its span
        while stack:
            path, entering = stack.pop()
            if not entering:
                self.spans[path] = (self.spans[path][0], len(self.order))
                continue
            if path:
                self.order.append(path)
            if path == "" or path in self.folders:
                self.spans[path] = (len(self.order), -1)
                stack.append((path, False))
                stack.extend((child, True) for child in reversed(self.children[path]))

    def entry(self, path: str) -> Dict[str, Any]:
        """The Hub's JSON entry for a file or folder of this tree; ``KeyError`` if neither."""
        if path in self.files:
            return file_entry(path, self.files[path])
        return {"type": "directory", "path": path, "oid": self.folders[path]}

    def count(self, folder: str, recursive: bool) -> int:
        """How many entries the listing of ``folder`` holds; ``KeyError`` if it is not a folder."""
        if recursive:
            start, end = self.spans[folder]
            return end - start
        return len(self.children[folder])

    def page(self, folder: str, recursive: bool, offset: int, size: int) -> List[Dict[str, Any]]:
        """Entries ``offset`` to ``offset + size`` of the listing of ``folder`` ("" for the root).

        Recursive listings hold every folder before its contents; entries are in path order otherwise.

        Raises:
            KeyError: if ``folder`` is not a folder of this tree.
        """
        if recursive:
            start, end = self.spans[folder]
            paths = self.order[start + offset: min(end, start + offset + size)]
        else:
            paths = self.children[folder][offset: offset + size]
        return [self.entry(path) for path in paths]


def file_entry(path: str, entry: Dict[str, Any]) -> Dict[str, Any]:
    """The Hub's JSON entry of one file of a tree."""
    item: Dict[str, Any] = {"type": "file", "path": path, "oid": entry["oid"], "size": entry["size"]}
    if entry["lfs"]:
        pointer_size = len(lfs_pointer(entry["sha256"], entry["size"]))
        item["lfs"] = {"oid": entry["sha256"], "size": entry["size"], "pointerSize": pointer_size}
    return item


_CACHE_SIZE = 64
_cache: "OrderedDict[str, TreeIndex]" = OrderedDict()
_cache_lock = threading.Lock()


def tree_index(commit: Dict[str, Any]) -> TreeIndex:
    """The index of a commit as returned by ``Store.commit_info``, cached by commit id.

    A commit id is the sha1 of the commit's content, tree included, so one id is one tree in
    every repository.
    """
    with _cache_lock:
        index = _cache.get(commit["id"])
        if index is not None:
            _cache.move_to_end(commit["id"])
            return index
    index = TreeIndex(commit["files"])
    with _cache_lock:
        _cache[commit["id"]] = index
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return index
