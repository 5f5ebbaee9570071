"""The commit path: ``POST .../preupload/{rev}`` and ``POST .../commit/{branch}`` (NDJSON).

Regular files arrive base64-encoded in the commit; LFS files must be stored already (uploaded
through LFS or Xet, see ``se_zoo.registry.api.lfs`` and ``se_zoo.registry.xet``). Files uploaded
through Xet become normal blobs here.
"""
import re
from functools import partial
from typing import Any, Dict, List, Optional

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import limits
from ..auth import Auth
from ..errors import BadRequest
from ..http import base_url, flag, json_object, ndjson_lines
from ..limits import check_count
from ..store.names import validate_path, validate_sha256
from ..store.policy import CommitPolicy, added_files
from ..store.quota import UploadCaps
from ..store.storage import Store, decode_base64, upload_mode
from ..xet.service import XetService

__all__ = ["CommitApi", "size_field"]


def size_field(value: Any) -> int:
    """A size from a request body: an int >= 0.

    Raises:
        BadRequest: naming the value otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest(f"Invalid size {value!r}: expected an integer >= 0.")
    return value


def _refuse_pull_requests(request: Request) -> None:
    if flag(request.query_params.get("create_pr")):
        raise BadRequest("Pull requests are not supported by this registry; commit to a branch instead.")


class CommitApi:
    """Preupload and commit over one store.

    Args:
        store: The registry's store.
        auth: Who may write.
        caps: The file size and namespace quota caps.
        xet: Rebuilds the files uploaded through Xet.
        policy: Signatures required and pickle scans (:class:`~se_zoo.registry.store.policy.CommitPolicy`).
    """

    def __init__(self, store: Store, auth: Auth, caps: UploadCaps, xet: XetService,
                 policy: Optional[CommitPolicy] = None):
        self.store, self.auth, self.caps, self.xet = store, auth, caps, xet
        self.policy = policy or CommitPolicy()

    async def preupload(self, request: Request, namespace: str, name: str, revision: str) -> Response:
        """``POST .../preupload/{rev}``: each announced file's upload mode and current oid."""
        self.auth.require_write(request)
        _refuse_pull_requests(request)
        commit_id = self.store.resolve(namespace, name, revision)
        files = self.store.commit_info(namespace, name, commit_id)["files"]
        announced = (await json_object(request)).get("files")
        if not isinstance(announced, list):
            raise BadRequest("'files' must be a list of {path, sample, size}.")
        check_count(len(announced), limits.MAX_PREUPLOAD_FILES, "files in preupload")
        result = []
        for item in announced:
            if not isinstance(item, dict):
                raise BadRequest("Each entry of 'files' must be an object {path, sample, size}.")
            path, size = validate_path(item.get("path")), size_field(item.get("size"))
            sample = decode_base64(item.get("sample", ""), path)[:512]
            existing = files.get(path)
            remote_oid = None if existing is None else existing["sha256"] if existing["lfs"] else existing["oid"]
            result.append({"path": path, "uploadMode": upload_mode(size, sample), "shouldIgnore": False,
                           "oid": remote_oid})
        return JSONResponse({"files": result, "commitOid": commit_id})

    async def commit(self, request: Request, namespace: str, name: str, revision: str) -> Response:
        """``POST .../commit/{branch}``: an NDJSON header line, then one line per operation."""
        branch = revision
        self.auth.require_write(request)
        _refuse_pull_requests(request)
        refs = self.store.refs(namespace, name)
        if branch not in refs["branches"]:
            if branch in refs["tags"] or re.fullmatch(r"[0-9a-f]{40}", branch):
                raise BadRequest(f"Commits go to a branch; {branch!r} is a tag or a commit id.")
            self.store.resolve(namespace, name, branch)  # raises RevisionNotFound
        header: Optional[Dict[str, Any]] = None
        operations: List[Dict[str, Any]] = []
        async for item in ndjson_lines(request):
            key, value = item["key"], item["value"]
            if header is None:
                if key != "header":
                    raise BadRequest("The first line of a commit payload must be its header.")
                header = value
                continue
            check_count(len(operations) + 1, limits.MAX_COMMIT_OPERATIONS, "operations in one commit")
            operations.append(await self._operation(key, value))
        if header is None:
            raise BadRequest("Empty commit payload: expected a header line.")
        regular = [op["size"] for op in operations if op["op"] == "add" and not op["lfs"]]
        await anyio.to_thread.run_sync(self.caps.check, namespace, regular)
        await self.xet.materialize(namespace, operations)  # files sent through Xet become blobs
        summary, parent = header.get("summary"), header.get("parentCommit")
        description = header.get("description") or ""
        if not isinstance(summary, str) or not summary.strip():
            raise BadRequest("The commit header needs a non-empty 'summary'.")
        if not isinstance(description, str) or (parent is not None and not isinstance(parent, str)):
            raise BadRequest("'description' and 'parentCommit' must be strings.")
        repo_id = "/".join(self.store.canonical_id(namespace, name))
        await anyio.to_thread.run_sync(self.policy.check_added, self.store, repo_id, added_files(operations))
        commit_id = await anyio.to_thread.run_sync(partial(  # signatures: checked under the repo's lock
            self.store.commit, namespace, name, branch, operations, summary, description, parent,
            check=partial(self.policy.check_files, self.store, repo_id)))
        return JSONResponse({"success": True, "commitOid": commit_id, "pullRequestUrl": None, "hookOutput": "",
                             "commitUrl": f"{base_url(request)}/{namespace}/{name}/commit/{commit_id}"})

    async def _operation(self, key: str, value: Dict[str, Any]) -> Dict[str, Any]:
        path = value.get("path")
        if key == "deletedFolder" and isinstance(path, str):
            path = path.rstrip("/")  # folders are sent as "name/"
        path = validate_path(path)
        if key == "file":
            if value.get("encoding", "base64") != "base64":
                raise BadRequest(f"File {path!r}: only base64 encoding is supported.")
            data = decode_base64(value.get("content"), path)
            sha = await anyio.to_thread.run_sync(self.store.put_bytes, data)
            return {"op": "add", "path": path, "sha256": sha, "size": len(data), "lfs": False}
        if key == "lfsFile":
            if value.get("algo", "sha256") != "sha256":
                raise BadRequest(f"File {path!r}: only sha256 LFS objects are supported.")
            oid = validate_sha256(value.get("oid"))
            size = size_field(value["size"]) if "size" in value else None
            if not await anyio.to_thread.run_sync(self.store.has_blob, oid, size):
                if (xet_size := self.xet.uploaded_size(oid, size)) is not None:  # rebuilt in commit()
                    return {"op": "add", "path": path, "sha256": oid, "size": xet_size, "lfs": True, "xet": True}
                raise BadRequest(f"File {path!r}: LFS object {oid} was not uploaded (or has another size).")
            if size is None:
                size = self.store.blob_path(oid).stat().st_size
            return {"op": "add", "path": path, "sha256": oid, "size": size, "lfs": True}
        if key == "deletedFile":
            return {"op": "delete", "path": path}
        if key == "deletedFolder":
            return {"op": "delete_folder", "path": path}
        raise BadRequest(f"Unknown commit operation {key!r}: expected file, lfsFile, deletedFile or deletedFolder.")
