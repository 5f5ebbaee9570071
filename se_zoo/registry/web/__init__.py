"""Server-rendered web pages of the registry: model list, cards, curves, files and history.

See ``se_zoo.registry.web.pages`` for the URLs. Torch-free like the rest of ``se_zoo.registry``.
"""
from .pages import CSP, WebPages

__all__ = ["CSP", "WebPages"]
