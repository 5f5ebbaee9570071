"""Failed pretrained downloads, explained: where se-zoo looked and the three ways out.

A download of pretrained weights (a se-zoo tag, an ``hf-hub:`` id, ``se-zoo
pull``) fails the same way whatever its cause — no network, an endpoint that
refuses connections, ``HF_HUB_OFFLINE=1`` with nothing cached — and the user
needs the same answer: the endpoint tried, the repo and file, and the ways out
(point ``HF_ENDPOINT`` at a registry, fill one with ``se-zoo hub mirror``, or
run offline from a filled cache). :func:`download_failures` wraps a download
and raises :class:`HubUnreachableError` with that one-line message.

huggingface_hub retries a failed metadata request with exponential back-off
(about 23 s per file, "Retrying in Ns" lines) when nothing is cached, even when
the connection is refused outright. :func:`download_failures` therefore first
checks, with one TCP connection, whether the endpoint refuses (or its host has
no address or route) and the files are not cached, and fails at once when so;
timeouts and everything else are left to huggingface_hub's own handling.
"""
import errno
import os
import socket
import urllib.request
from contextlib import contextmanager
from typing import Iterator, Optional, Sequence, Union
from urllib.parse import urlsplit

__all__ = ["AIR_GAPPED_DOC", "HubUnreachableError", "endpoint_refusal", "download_failures", "model_download_failures",
           "pretrained_cfg_failures"]

AIR_GAPPED_DOC = "docs/air-gapped.md"

# Connection failures that are final at once: no back-off can turn them into a download.
_REFUSALS = {errno.ECONNREFUSED: "connection refused", errno.ENETUNREACH: "network unreachable",
             errno.EHOSTUNREACH: "no route to host"}


class HubUnreachableError(ConnectionError):
    """Pretrained weights could not be downloaded and are not cached.

    A ``ConnectionError`` (as huggingface_hub's ``OfflineModeIsEnabled``), not an
    ``EntryNotFoundError``: timm tries the next weights file on the latter.

    Attributes:
        endpoint: The Hub endpoint tried (None in offline mode).
        repo_id: The repo.
        filename: The file.
        reason: Why it failed, in a few words.
    """

    def __init__(self, endpoint: Optional[str], repo_id: str, filename: str, reason: str):
        self.endpoint, self.repo_id, self.filename, self.reason = endpoint, repo_id, filename, reason
        where = f"from {endpoint}" if endpoint else "(HF_HUB_OFFLINE=1, cache only)"
        self.message = (
            f"cannot download {filename} of {repo_id} {where}: {reason}. Ways out: set HF_ENDPOINT to a "
            f"registry that has it (se-zoo hub serve), copy it into one with `se-zoo hub mirror`, or set "
            f"HF_HUB_OFFLINE=1 with a cache that holds it; see {AIR_GAPPED_DOC}")
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        return type(self), (self.endpoint, self.repo_id, self.filename, self.reason)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def endpoint_refusal(endpoint: str, timeout: float = 3.0) -> Optional[str]:
    """Why a connection to ``endpoint`` fails at once, or None when it may succeed.

    One TCP connection to the endpoint's host and port. Only final answers count:
    an unknown host, a refused connection, no route; a timeout or any other error
    returns None (huggingface_hub then tries, and retries, itself). Returns None
    without connecting when a proxy applies to the endpoint.

    Args:
        endpoint: An ``http(s)://host[:port]`` URL.
        timeout: Seconds to wait for the connection.

    Returns:
        A few words (``"connection refused"``, ...) or None.
    """
    parts = urlsplit(endpoint)
    host = parts.hostname
    if not host or parts.scheme not in ("http", "https"):
        return None
    proxies = urllib.request.getproxies()
    if (proxies.get(parts.scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(host):
        return None  # the proxy, not this machine, connects to the endpoint
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except socket.gaierror:
        return f"host {host} not found (no network or DNS)"
    except OSError as exc:
        return _REFUSALS.get(exc.errno)


def _is_cached(repo_id: str, filenames: Sequence[str], revision: Optional[str],
               cache_dir: Optional[Union[str, os.PathLike]]) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return any(isinstance(try_to_load_from_cache(repo_id, name, cache_dir=cache_dir, revision=revision), str)
               for name in filenames)


@contextmanager
def download_failures(
        repo_id: str,
        filenames: Union[str, Sequence[str]],
        *,
        revision: Optional[str] = None,
        cache_dir: Optional[Union[str, os.PathLike]] = None,
) -> Iterator[None]:
    """Raise :class:`HubUnreachableError` for a download of ``repo_id`` that cannot succeed.

    On entry, when not offline, none of ``filenames`` is cached and the endpoint
    refuses connections (see :func:`endpoint_refusal`), raises at once instead of
    letting huggingface_hub retry. On exit, turns huggingface_hub's "not cached
    and cannot reach the Hub" errors and the HTTP client's connection errors into
    the same error. Other errors (no such repo or file, 401, integrity) pass.

    Args:
        repo_id: The repo downloaded from, optionally ``repo@revision``.
        filenames: The file (or the files tried in order) downloaded.
        revision: The revision asked for.
        cache_dir: huggingface_hub cache directory; defaults to its usual one.

    Raises:
        HubUnreachableError: naming the endpoint, the repo, the file and the ways out.
    """
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError, HTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    from .hf_compat import is_offline_mode

    names = [filenames] if isinstance(filenames, str) else list(filenames)
    repo_id, _, at = repo_id.partition("@")
    revision = revision or at or None
    endpoint = constants.ENDPOINT.rstrip("/")
    offline = is_offline_mode()
    shown = " (or ".join(names) + ")" * (len(names) - 1)
    if not offline and not _is_cached(repo_id, names, revision, cache_dir):
        reason = endpoint_refusal(endpoint)
        if reason:
            raise HubUnreachableError(endpoint, repo_id, shown, reason)
    try:
        yield
    except HubUnreachableError:
        raise
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        reason = "not in the cache" if offline else f"no answer and not in the cache ({_first_line(exc)})"
        raise HubUnreachableError(None if offline else endpoint, repo_id, shown, reason) from exc
    except HTTPError as exc:
        if isinstance(exc, HfHubHTTPError) or not hasattr(exc, "request"):
            raise  # the Hub answered (404, 401, ...): not a reachability problem
        raise HubUnreachableError(endpoint, repo_id, shown, _first_line(exc)) from exc


def model_download_failures(model_name: str, pretrained: bool):
    """:func:`download_failures` for ``timm.create_model(model_name, pretrained=...)``.

    Covers ``hf-hub:ID`` names, whose config and weights timm downloads before
    any se-zoo code runs. Registry tags are covered where the model is built.

    Args:
        model_name: A timm model name (``name``, ``name.tag``, ``hf-hub:ID[@rev]``, ``local-dir:DIR``).
        pretrained: Whether pretrained weights are loaded.

    Returns:
        A context manager.
    """
    from contextlib import nullcontext

    if not model_name.startswith("hf-hub:"):
        return nullcontext()
    files = ["config.json", "model.safetensors", "pytorch_model.bin"] if pretrained else ["config.json"]
    return download_failures(model_name[len("hf-hub:"):], files)


def pretrained_cfg_failures(cfg, cache_dir: Optional[Union[str, os.PathLike]] = None):
    """:func:`download_failures` for loading a timm pretrained cfg's weights from the Hub.

    Args:
        cfg: A resolved ``timm.models.PretrainedCfg``, or None (nothing downloaded).
        cache_dir: huggingface_hub cache directory.

    Returns:
        A context manager; a no-op when the weights do not come from a Hub repo.
    """
    from contextlib import nullcontext

    if cfg is None or cfg.state_dict is not None or cfg.file or not cfg.hf_hub_id \
            or cfg.source in ("local-dir",):
        return nullcontext()
    files = [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
    return download_failures(cfg.hf_hub_id, files, cache_dir=cache_dir)
