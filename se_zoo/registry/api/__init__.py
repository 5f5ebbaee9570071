"""The Hub JSON API and LFS: the handlers the official ``huggingface_hub`` client talks to.

``repos`` (accounts, repositories, refs, trees, history), ``commit`` (preupload and commit), ``lfs``
(batch, signed uploads, verify), ``files`` (downloads), ``listing`` (``GET /api/models``). The URLs
they answer are in ``se_zoo.registry.routes``.
"""
from .commit import CommitApi
from .files import Downloads
from .lfs import LfsApi
from .repos import RepoApi

__all__ = ["CommitApi", "Downloads", "LfsApi", "RepoApi"]
