"""Errors in what a caller asked for, as distinct from failures of the code.

Library functions raise these for bad arguments and inputs. Each subclasses the
built-in error a caller expects (``except ValueError`` keeps working); the
mix-in :class:`UserError` lets the ``se-zoo`` command line print them as one line
while every other exception keeps its traceback. Torch-free, imports nothing.
"""

__all__ = ["UserError", "InvalidArgument", "InputNotFound", "OutputExists", "DeviceUnavailable"]


class UserError(Exception):
    """Mix-in of every error caused by an argument or input the caller can fix."""


class InvalidArgument(UserError, ValueError):
    """An argument is out of range or disagrees with the data or another argument."""


class InputNotFound(UserError, FileNotFoundError):
    """A file or folder the caller named does not exist or lacks what it must hold."""


class OutputExists(UserError, FileExistsError):
    """An output location already holds something that must not be overwritten."""


class DeviceUnavailable(UserError, RuntimeError):
    """A device the caller asked for (``cuda``) is not available on this machine."""
