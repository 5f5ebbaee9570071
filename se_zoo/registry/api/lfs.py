"""Git LFS uploads (``basic`` transfer): batch, signed upload URLs, verify.

``POST /{id}.git/info/lfs/objects/batch`` answers, for each object not stored yet, a ``PUT`` URL
signed for that one object with the root's key (shared by its processes), valid for an hour; the
upload checks sha256 and size while receiving. ``POST .../verify`` confirms an object is stored.
"""
import hmac
import time
from typing import Any, Dict, List, Tuple

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..auth import Auth
from ..errors import BadRequest, Forbidden
from ..http import base_url, error_response, json_object, write_body
from ..limits import MAX_BATCH_OBJECTS, ascii_int
from ..store.names import validate_repo_part, validate_sha256
from ..store.quota import UploadCaps
from ..store.storage import Store
from .commit import size_field

__all__ = ["LfsApi", "UPLOAD_URL_TTL"]

UPLOAD_URL_TTL = 3600


class LfsApi:
    """The LFS handlers over one store.

    Args:
        store: The registry's store.
        auth: Who may write; signs the upload URLs.
        caps: The file size and namespace quota caps.
    """

    def __init__(self, store: Store, auth: Auth, caps: UploadCaps):
        self.store, self.auth, self.caps = store, auth, caps

    async def batch(self, request: Request, namespace: str, name: str) -> Response:
        """``POST .../objects/batch`` (``upload`` only): signed URLs for the objects not stored yet."""
        self.auth.require_write(request)
        self.store.repo_meta(namespace, name)
        data = await json_object(request)
        if data.get("operation") != "upload":
            raise BadRequest("Only the 'upload' operation is served; download files through /resolve.")
        if "basic" not in (data.get("transfers") or ["basic"]):
            raise BadRequest("Only the 'basic' LFS transfer is served.")
        if data.get("hash_algo", "sha256") != "sha256":
            raise BadRequest("Only sha256 LFS objects are served.")
        objects = data.get("objects")
        if not isinstance(objects, list) or len(objects) > MAX_BATCH_OBJECTS:
            raise BadRequest(f"'objects' must be a list of at most {MAX_BATCH_OBJECTS} {{oid, size}}.")
        base, expires = base_url(request), int(time.time()) + UPLOAD_URL_TTL
        if not all(isinstance(obj, dict) for obj in objects):
            raise BadRequest("Each LFS object must be {oid, size}.")
        wanted = [(validate_sha256(obj.get("oid")), size_field(obj.get("size"))) for obj in objects]
        missing = await anyio.to_thread.run_sync(self._missing_blobs, namespace, wanted)
        answer = []
        for oid, size in wanted:
            entry: Dict[str, Any] = {"oid": oid, "size": size}
            if (oid, size) in missing:
                signature = self._sign(namespace, name, oid, size, expires)
                objects_url = f"{base}/{namespace}/{name}.git/info/lfs/objects"
                entry["actions"] = {
                    "upload": {"href": f"{objects_url}/{oid}/{size}?expires={expires}&signature={signature}",
                               "expires_in": UPLOAD_URL_TTL},
                    "verify": {"href": f"{objects_url}/verify"},
                }
            answer.append(entry)
        return JSONResponse({"transfer": "basic", "objects": answer, "hash_algo": "sha256"},
                            media_type="application/vnd.git-lfs+json")

    async def verify(self, request: Request, namespace: str, name: str) -> Response:
        """``POST .../objects/verify``: 200 when the object is stored with that size, else 404."""
        self.auth.require_write(request)
        self.store.repo_meta(namespace, name)
        data = await json_object(request)
        oid, size = validate_sha256(data.get("oid")), size_field(data.get("size"))
        if not self.store.has_blob(oid, size):
            return error_response(404, f"LFS object {oid} with {size} bytes was not uploaded.")
        return JSONResponse({"success": True})

    async def upload(self, request: Request, namespace: str, name: str, oid: str, size: str) -> Response:
        """``PUT .../objects/{oid}/{size}?expires&signature``: the bytes, hashed and written off the loop."""
        oid, size_bytes = validate_sha256(oid), ascii_int(size, "size")
        expires = ascii_int(request.query_params.get("expires"), "expires")
        signature = request.query_params.get("signature", "")
        expected = self._sign(validate_repo_part(namespace, "namespace"), validate_repo_part(name, "name"),
                              oid, size_bytes, expires)
        if not hmac.compare_digest(signature, expected) or expires < time.time():
            raise Forbidden("Invalid or expired upload URL; ask the LFS batch endpoint for a new one.")
        self.store.repo_meta(namespace, name)
        if not await anyio.to_thread.run_sync(self.store.has_blob, oid, size_bytes):
            await anyio.to_thread.run_sync(self.caps.check, namespace, [size_bytes])
        with self.store.blob_writer(max_size=size_bytes) as writer:
            await write_body(request, writer.write)
            await anyio.to_thread.run_sync(writer.commit, oid, size_bytes)
        return Response(status_code=200)

    def _missing_blobs(self, namespace: str, wanted: List[Tuple[str, int]]) -> set:
        """The ``(oid, size)`` pairs to upload, after checking the caps; stored ones are kept fresh."""
        missing = {(oid, size) for oid, size in wanted
                   if not (self.store.has_blob(oid, size) and self.store.mark_fresh(oid))}
        self.caps.check(namespace, {oid: size for oid, size in missing}.values())
        return missing

    def _sign(self, namespace: str, name: str, oid: str, size: int, expires: int) -> str:
        return self.auth.sign(f"{namespace}/{name}\n{oid}\n{size}\n{expires}")

