"""The Hub-compatible registry: a server the official ``huggingface_hub`` client talks to.

A package of its own that imports nothing of the model side (no torch, timm or
``se_zoo.models``), so ``se-zoo hub serve`` starts in a second and stays small.
``python -m se_zoo.registry serve --root DIR`` runs it like ``se-zoo hub serve``, and
``python -m se_zoo.registry fsck --root DIR`` checks a root like ``se-zoo hub fsck``.

Layout: ``app`` (``create_app``, ``HubServer``, ``workers``), ``routes`` (the one route table),
``auth`` (tokens, the page cookie, repository visibility), ``limits`` (every input cap), ``http``
(bodies, ranges, responses), ``api/`` (the Hub JSON API and LFS), ``store/`` (storage, locking,
names, tree index, quota, cards, fsck), ``mirror/`` (upstream, pull-through, single flight, mirror,
bundle and import), ``xet/`` (the Xet protocol), ``web/`` (pages for people), ``cli``.
"""
