"""The huggingface_hub names se-zoo uses that differ between the client releases it supports.

huggingface_hub 1.0 split a missing file into ``LocalEntryNotFoundError`` (not in
the cache) and ``RemoteEntryNotFoundError`` (the Hub answered 404), and later
releases added ``is_offline_mode()``. Before that a missing remote file is an
``EntryNotFoundError``, of which ``LocalEntryNotFoundError`` is a subclass:
callers catch the local error first, and both spellings then mean the same.
"""
from huggingface_hub import constants

try:
    from huggingface_hub.errors import RemoteEntryNotFoundError
except ImportError:  # huggingface_hub < 1.0
    from huggingface_hub.errors import EntryNotFoundError as RemoteEntryNotFoundError

__all__ = ["RemoteEntryNotFoundError", "is_offline_mode"]


def is_offline_mode() -> bool:
    """Whether huggingface_hub runs offline (``HF_HUB_OFFLINE``).

    Returns:
        The client's own answer where it has ``is_offline_mode()``, else its
        ``constants.HF_HUB_OFFLINE``, which older releases read at import.
    """
    try:
        from huggingface_hub import is_offline_mode as client_is_offline_mode
    except ImportError:
        return bool(constants.HF_HUB_OFFLINE)
    return client_is_offline_mode()
