"""Every failure keyfob raises on purpose.

    KeyfobError                 message + a one-line ``hint`` (what to do next)
    ├── ConfigError             exit 2: bad arguments, config.toml, unknown provider, refused http://
    ├── CredentialsMissing      exit 3: a secret was not found anywhere keyfob looked
    ├── InvalidCredentials      exit 3: the provider refused the secrets or the token
    ├── StorageError            exit 3: the keyring refused (locked, dismissed, no answer)
    ├── ProviderError           exit 4: an unexpected or malformed answer, an OAuth error
    ├── TransportError          exit 4: network failure, timeout, retries spent
    └── RateLimited             exit 5: the API rate budget is spent for longer than max_wait

No message ever holds a secret: errors are built from names, URLs without
query strings, status codes and the server's ``error``/``error_description``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs the cached-token path an import
    from typing import Any


class KeyfobError(Exception):
    """Base class; ``str(err)`` is one line, ``err.hint`` the next step."""

    exit_code = 1
    default_hint = ""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        error: str | None = None,
        description: str | None = None,
        status: int | None = None,
        response: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint
        #: the server's ``error`` code and ``error_description`` (RFC 6749 §5.2), if any
        self.error = error
        self.description = description
        self.status = status
        #: the server's answer as the HTTP client gave it, where there was one (the
        #: name and meaning of ``requests.RequestException.response``)
        self.response = response

    def __str__(self) -> str:
        return self.message

    def one_line(self) -> str:
        """The message and its hint, for a terminal."""
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(KeyfobError):
    exit_code = 2
    default_hint = "check the command line and config.toml (`keyfob providers` lists what is known)"


class CredentialsMissing(KeyfobError):
    exit_code = 3


class InvalidCredentials(KeyfobError):
    exit_code = 3


class StorageError(KeyfobError):
    exit_code = 3
    default_hint = "unlock your keyring, or set KEYFOB_KEYRING=file to keep secrets in a 0600 file"


class ProviderError(KeyfobError):
    """The provider answered, but not with what keyfob could use."""

    exit_code = 4
    default_hint = "the provider answered unexpectedly; try again later or run with --debug"


class TransportError(KeyfobError):
    exit_code = 4
    default_hint = "check the network and the provider's URL, then try again"


class RateLimited(KeyfobError):
    """The rate budget is spent for longer than ``max_wait``; ``retry_at`` (epoch
    seconds) says when a request may go. Nothing was sent."""

    exit_code = 5
    default_hint = "wait, or raise [limits] max_wait in config.toml"

    def __init__(self, message: str, *, retry_at: float = 0.0, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_at = retry_at
