"""The registry's storage, free of HTTP: what is on disk and the rules that keep it consistent.

``storage`` (blobs, commits, refs, repositories), ``locking`` (cross-process locks, per-process
temporaries), ``names`` (repository ids, refs and paths validated), ``tree_index`` (a commit's tree),
``quota`` (file size and namespace caps), ``cards`` (README metadata), ``fsck`` (checks and garbage),
``integrity`` (damaged blobs refused on the read path), ``scrub`` (blobs re-hashed in the
background).
"""
