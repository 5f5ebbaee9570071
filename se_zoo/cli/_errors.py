"""The command line's error policy: which exceptions are the user's to fix, as one-line :class:`CliError`.

Converted, and only these: the library's :class:`se_zoo.errors.UserError`, an
unreachable Hub (``se_zoo.pretrained.download_errors.HubUnreachableError``), a
weights file's sha256 mismatch (``se_zoo.IntegrityError``), timm's "Unknown
model" for a name the user typed, a missing optional package, and (within
:func:`hub_errors`) huggingface_hub's not-found, auth and connection errors.
"""
from contextlib import contextmanager
from typing import Iterator, Optional

from ..errors import UserError

# top-level module of an optional dependency -> the se-zoo extra that installs it
_EXTRAS = {"sklearn": "data", "matplotlib": "plot", "starlette": "server", "uvicorn": "server",
           "model_signing": "signing"}


class CliError(Exception):
    """An error the user can fix, printed as ``se-zoo COMMAND: error: MESSAGE`` with exit status 1."""


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _is_integrity_error(exc: BaseException) -> bool:
    if not isinstance(exc, ValueError):  # IntegrityError is a ValueError; skip the import otherwise
        return False
    from ..pretrained.integrity import IntegrityError
    from ..registry.signing import SignatureError

    return isinstance(exc, (IntegrityError, SignatureError))


@contextmanager
def user_errors() -> Iterator[None]:
    """Re-raise the errors a user can fix as :class:`CliError`; let every other exception through.

    Raises:
        CliError: for a :class:`~se_zoo.errors.UserError`, a weights download that cannot reach
            its Hub (:class:`~se_zoo.pretrained.download_errors.HubUnreachableError`), an ``IntegrityError``,
            timm's ``RuntimeError("Unknown model (NAME)")`` or a ``ModuleNotFoundError``
            of an optional dependency (the message names the extra to install).
    """
    from ..pretrained.download_errors import HubUnreachableError

    try:
        yield
    except (UserError, HubUnreachableError) as exc:
        raise CliError(_first_line(exc)) from None
    except RuntimeError as exc:
        if not str(exc).startswith("Unknown model ("):  # timm.create_model's message for an unknown name
            raise
        raise CliError(_first_line(exc)) from None
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get((exc.name or "").partition(".")[0])
        if extra is None:
            raise
        hint = "" if "pip install" in str(exc) else f": pip install 'se-zoo[{extra}]'"
        raise CliError(f"{_first_line(exc)}{hint}") from None
    except ValueError as exc:
        if not _is_integrity_error(exc):
            raise
        raise CliError(_first_line(exc)) from None


def hub_repo(model: Optional[str], push_to: Optional[str] = None) -> Optional[str]:
    """The one Hub repo a command works with, to name in :func:`hub_errors`' messages.

    Args:
        model: A model name as typed; only ``hf-hub:ORG/NAME[@REV]`` names a repo.
        push_to: A repo id the command pushes to.

    Returns:
        ``ORG/NAME`` when exactly one repo is involved, else None (messages then quote the Hub).
    """
    repos = {r for r in (model[len("hf-hub:"):].partition("@")[0] if model and model.startswith("hf-hub:")
                         else None, push_to) if r}
    return repos.pop() if len(repos) == 1 else None


@contextmanager
def hub_errors(repo_id: Optional[str], revision: Optional[str] = None) -> Iterator[None]:
    """Re-raise huggingface_hub's errors as one-line :class:`CliError`.

    Args:
        repo_id: The repo the command works on, for the messages (None: the Hub's own message).
        revision: The revision asked for, for the messages.

    Raises:
        CliError: for a missing repo, revision or file, a refused token, an
            unreachable endpoint, or offline mode without a cached copy.
    """
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        HfHubHTTPError, HTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled, RepositoryNotFoundError,
        RevisionNotFoundError)

    from ..pretrained.hf_compat import RemoteEntryNotFoundError

    endpoint = constants.ENDPOINT
    try:
        yield
    except (OfflineModeIsEnabled, LocalEntryNotFoundError) as exc:  # first: an HfHubHTTPError before 1.0
        raise CliError(_first_line(exc)) from None
    except RepositoryNotFoundError as exc:
        if repo_id is None:
            raise CliError(f"{endpoint}: {_first_line(exc)}") from None
        raise CliError(f"no repository {repo_id} at {endpoint} (or it is private and HF_TOKEN "
                       "does not grant access)") from None
    except RevisionNotFoundError as exc:
        if repo_id is None:
            raise CliError(f"{endpoint}: {_first_line(exc)}") from None
        raise CliError(f"{repo_id} has no revision {revision!r} at {endpoint}") from None
    except RemoteEntryNotFoundError as exc:
        raise CliError(f"{repo_id or endpoint}: {_first_line(exc)}") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code
        if status in (401, 403):
            raise CliError(f"{endpoint} refused the request ({status}): set HF_TOKEN to a token "
                           f"with access to {repo_id or 'the repo'}") from None
        raise CliError(f"{endpoint} answered {status}: {exc.server_message or _first_line(exc)}") from None
    except HTTPError as exc:  # the HTTP client's own errors: connection refused, timeouts, ...
        raise CliError(f"cannot reach {endpoint}: {_first_line(exc)}") from None
