"""The process's default broker, and the accounts facade on it.

The broker decides and opens its parts on first use (the cache:
:mod:`keyfob.cache.opening`; the secret store: :func:`keyfob.secretstore.open_store`);
this module keeps one broker per process, and the accounts facade on it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from keyfob import config

if TYPE_CHECKING:
    from keyfob.accounts import Accounts
    from keyfob.broker import Broker


_default: Broker | None = None
_requests: Broker | None = None
_default_lock = threading.Lock()


def default() -> Broker:
    """The process's broker, made on first use from the environment and config.toml."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                from keyfob.broker import Broker

                _default = Broker()
    return _default


def via_requests() -> Broker:
    """The process's broker whose requests go out on ``requests``
    (:mod:`keyfob.requests_transport`): ``keyfob.inaturalist``'s, so that the
    tools pyinaturalist users test with see them. Same cache and secret store."""
    global _requests
    if _requests is None:
        with _default_lock:
            if _requests is None:
                from keyfob.broker import Broker
                from keyfob.requests_transport import RequestsTransport

                settings = config.load()
                _requests = Broker(settings=settings, transport=RequestsTransport(settings.http))
    return _requests


def accounts() -> Accounts:
    """Login, logout and the stored secrets, on the process's broker."""
    from keyfob.accounts import Accounts

    return Accounts(default())


def reset() -> None:
    """Forget the process's broker (tests that change KEYFOB_HOME call this)."""
    global _default, _requests
    with _default_lock:
        for broker in (_default, _requests):
            if broker is not None:
                broker.transport.close()
        _default = _requests = None
