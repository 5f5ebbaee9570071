"""The registry's mirror: copies of repositories from another Hub, online or through bundles.

``upstream`` (the client of another Hub), ``pullthrough`` (``serve --upstream``: reads fetch what is
missing; mirrored repositories are read-only), ``flight`` (one upstream download per blob), ``adopt``
(commits checked and stored under their own id), ``transfer`` (``se-zoo hub mirror``), ``bundle``
(files for air-gapped import), ``catalog`` (the repositories behind se-zoo's tags), ``repair``
(``fsck --repair``: damaged blobs fetched again from their upstream), ``cli``.
"""
