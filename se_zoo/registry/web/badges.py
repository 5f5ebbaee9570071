"""The model page's signature badge and the pickle-scan badges of the model and file pages."""
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..signing import SIGNATURE_NAME, SignatureError, TrustPolicy, signer_key_id
from ..store.policy import signature_status
from ..store.scans import is_pickle, scan_blob, security_status
from ..store.storage import Store

__all__ = ["file_scan", "pickle_issues", "signature_badge"]


def signature_badge(store: Store, repo_id: str, files: Mapping[str, Mapping[str, Any]],
                    trusted: Optional[TrustPolicy]) -> Tuple[str, str]:
    """``(state, text)`` of a commit's signature: state ``unsigned``, ``signed`` (not checked: no key is
    trusted for the repo here), ``verified`` or ``invalid``; the text names the key or the reason."""
    if SIGNATURE_NAME not in files:
        return "unsigned", "unsigned"
    claimed = signer_key_id(store.blob_path(files[SIGNATURE_NAME]["sha256"]).read_bytes()) or "an unnamed key"
    if trusted is None or trusted.keys_for(repo_id) is None:
        return "signed", f"signed by {claimed}, not verified (no key trusted for this repo here)"
    try:
        signed = signature_status(store, repo_id, files, trusted)
    except SignatureError as exc:
        return "invalid", f"signature does not verify: {exc}"
    except ModuleNotFoundError:
        return "signed", f"signed by {claimed}, not verified (model-signing is not installed)"
    return "verified", f"signed by {signed.key_id}, verified"


def pickle_issues(store: Store, files: Mapping[str, Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """The commit's pickle files the scan flags (``securityRepoStatus``'s ``filesWithIssues``)."""
    return security_status(store, files)["filesWithIssues"]


def file_scan(store: Store, path: str, entry: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """A pickle file's scan (``level``, ``imports`` as text), or None for other files."""
    if not is_pickle(path):
        return None
    result = scan_blob(store, entry["sha256"], path)
    flagged = [f"{i['module']}.{i['name']}" for i in result["pickleImports"] if i["safety"] != "innocuous"]
    return {"level": result["level"], "imports": ", ".join(flagged)}
