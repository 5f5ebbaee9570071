"""Helpers shared by the test folders: import them as ``helpers.<module>``.

``tests/`` is on ``sys.path`` because pytest (default ``prepend`` import mode) puts the directory of the
root ``tests/conftest.py`` there. Only ``weights`` imports torch; the rest stay importable in a
torch-free install.
"""
