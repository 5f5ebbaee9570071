"""The Xet protocol for the registry: hashes, xorbs, shards, tokens, their storage and HTTP endpoints.

``check_xet`` (in ``gc``) checks and garbage-collects the Xet data of a registry root.
"""
from .gc import XetReport, check_xet

__all__ = ["XetReport", "check_xet"]
