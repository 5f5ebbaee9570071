"""The errors the registry answers with; ``status`` and ``code`` are what the HTTP layer sends."""
from typing import Optional


class CommandError(ValueError):
    """Bad input to a registry command (``serve``, ``fsck``, ``mirror``, ``import``) that its user can fix.

    The command line prints it as one line; every other exception keeps its traceback.
    """


class RemoteRefused(CommandError):
    """Another registry refused a request of ``mirror``/``import`` (its status and message are quoted)."""


class HubError(Exception):
    """A request the registry refuses; ``status`` and ``code`` are what the HTTP layer sends."""

    status = 400
    code: Optional[str] = None


class BadRequest(HubError):
    """Malformed or invalid input."""


class RepoNotFound(HubError):
    """The repository does not exist (or the caller may not see it)."""

    status, code = 404, "RepoNotFound"


class RevisionNotFound(HubError):
    """The branch, tag or commit does not exist in the repository."""

    status, code = 404, "RevisionNotFound"


class EntryNotFound(HubError):
    """The file does not exist at the resolved commit (``commit`` tells which)."""

    status, code = 404, "EntryNotFound"

    def __init__(self, message: str, commit: Optional[str] = None):
        super().__init__(message)
        self.commit = commit


class Conflict(HubError):
    """The repository, branch or tag already exists."""

    status = 409


class Forbidden(HubError):
    """The operation is not allowed on this object (e.g. deleting the default branch)."""

    status = 403


class PreconditionFailed(HubError):
    """The branch moved since the commit the client based its change on."""

    status = 412


class Unauthorized(HubError):
    """No token, or a token the server does not know."""

    status = 401


class PayloadTooLarge(HubError):
    """A request body, file or namespace over one of the server's size limits."""

    status = 413
