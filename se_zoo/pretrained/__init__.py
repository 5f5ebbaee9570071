"""Pretrained weights, torch-free: the ``weights/`` catalogue, sha256 integrity, failed downloads explained.

* :mod:`~se_zoo.pretrained.catalog`: reads ``weights/*.json``, the one table of
  pretrained tags, and turns its records into timm pretrained cfgs.
* :mod:`~se_zoo.pretrained.integrity`: verified reads of weights files against
  the hashes they are published or pinned with.
* :mod:`~se_zoo.pretrained.download_errors`: a failed weights download, as one
  error naming the endpoint, the repo, the file and the ways out.

The model families (``se_zoo.models``) and the Hub client (``se_zoo.hub``) both
use it; it imports neither, nor torch.
"""
