"""One-line messages for the Hub errors ``se-zoo push`` / ``se-zoo pull`` meet."""
from contextlib import contextmanager
from typing import Iterator, Optional


class HubCommandError(ValueError):
    """A Hub error of ``se-zoo push`` / ``pull``, reported by the CLI as one line.

    A ValueError rather than ``se_zoo.cli.CliError``: under ``python -m se_zoo.cli``
    the CLI catches ``__main__.CliError``, a different class from ``se_zoo.cli.CliError``.
    """


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@contextmanager
def hub_errors(repo_id: str, revision: Optional[str] = None) -> Iterator[None]:
    """Re-raise huggingface_hub's errors as a :class:`HubCommandError` with one line.

    Args:
        repo_id: The repo the command works on, for the messages.
        revision: The revision asked for, for the messages.

    Raises:
        HubCommandError: for a missing repo, revision or file, a refused token, an
            unreachable endpoint, or offline mode without a cached copy.
    """
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        HfHubHTTPError, HTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled, RemoteEntryNotFoundError,
        RepositoryNotFoundError, RevisionNotFoundError)

    endpoint = constants.ENDPOINT
    try:
        yield
    except RepositoryNotFoundError:
        raise HubCommandError(f"no repository {repo_id} at {endpoint} (or it is private and HF_TOKEN "
                       "does not grant access)") from None
    except RevisionNotFoundError:
        raise HubCommandError(f"{repo_id} has no revision {revision!r} at {endpoint}") from None
    except RemoteEntryNotFoundError as exc:
        raise HubCommandError(f"{repo_id}: {_first_line(exc)}") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code
        if status in (401, 403):
            raise HubCommandError(f"{endpoint} refused the request ({status}): set HF_TOKEN to a token "
                           f"with write access to {repo_id}") from None
        raise HubCommandError(f"{endpoint} answered {status}: {exc.server_message or _first_line(exc)}") from None
    except (OfflineModeIsEnabled, LocalEntryNotFoundError) as exc:
        raise HubCommandError(_first_line(exc)) from None
    except HTTPError as exc:  # the HTTP client's own errors: connection refused, timeouts, ...
        raise HubCommandError(f"cannot reach {endpoint}: {_first_line(exc)}") from None
