"""The Hub-compatible registry: a server the official ``huggingface_hub`` client talks to.

A package of its own that imports nothing of the model side (no torch, timm or
``se_zoo.models``), so ``se-zoo hub serve`` starts in a second and stays small.
``python -m se_zoo.registry serve --root DIR`` runs it like ``se-zoo hub serve``.
"""
