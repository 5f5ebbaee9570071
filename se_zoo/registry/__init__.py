"""The Hub-compatible registry: a server the official ``huggingface_hub`` client talks to.

A package of its own that imports nothing of the model side (no torch, timm or
``se_zoo.models``), so ``se-zoo hub serve`` starts in a second and stays small.
``python -m se_zoo.registry serve --root DIR`` runs it like ``se-zoo hub serve``, and
``python -m se_zoo.registry fsck --root DIR`` checks a root like ``se-zoo hub fsck``.

Modules: ``server`` (HTTP handlers, one dispatch point), ``storage`` (the on-disk store),
``locking`` (cross-process locks, per-process temporaries), ``limits``/``names``/``bodies``
(input caps and validation), ``tree_index``, ``listing``, ``cards``, ``quota``, ``fsck``,
``offload`` (CPU-heavy work in a helper process), ``workers`` (``--workers N``), ``cli``.
"""
