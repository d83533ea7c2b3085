"""The one place that decides: memory → cache → lock → look again → renew or acquire → save.

Whose a cached token is, :class:`keyfob._identity.Identity` answers; whether it
is good, ``Token.state``; how a provider gets and renews one, its kind. Single
flight (:mod:`keyfob.flight`) makes the token endpoint see one request however
many threads, processes and machines ask at once. Logging in and out, and what
is stored, are :mod:`keyfob.accounts`; building a broker from the settings is
:mod:`keyfob.wiring`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from keyfob import config
from keyfob._identity import STORE_TRUST, Identity
from keyfob.cache import Entry, Key
from keyfob.cache.base import Cache
from keyfob.cache.opening import cache_opener
from keyfob.clientauth import attach
from keyfob.errors import (
    ConfigError,
    CredentialsMissing,
    InvalidCredentials,
    KeyfobError,
    ProviderError,
    TransportError,
)
from keyfob.flight import Flight, SingleFlight
from keyfob.flow import Flow
from keyfob.provider import Provider, registry
from keyfob.provider.base import Signer, login_command
from keyfob.secretstore import Credentials, SecretStore, resolve
from keyfob.secretstore import open_store as _open_store
from keyfob.token import Token, TokenState
from keyfob.transport import Transport

if TYPE_CHECKING:
    from keyfob.ratelimit import Budget, Limiter
    from keyfob.rotation import Book

log = logging.getLogger("keyfob")

OpenCache = Callable[[Callable[[str], None], Callable[[Entry], bool]], Cache]
OpenStore = Callable[[Mapping[str, str]], SecretStore]


class Broker:
    """Tokens for every provider, by (provider, account).

    ``cache``, ``store`` and ``transport`` are made on first use when not given
    (``open_cache``, ``open_store``); ``clock`` is epoch seconds (tests move it by
    hand); ``flight`` is the single-flight lock (``keyfob.flight.Unlocked`` in the
    tests that show it matters); ``limiter`` holds the rate budgets
    (``Limiter(store=MemoryStore())`` switches sharing off, likewise).
    """

    def __init__(
        self,
        *,
        settings: config.Settings | None = None,
        cache: Cache | None = None,
        store: SecretStore | None = None,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
        flight: Flight | None = None,
        open_cache: OpenCache | None = None,
        open_store: OpenStore | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        self.environ = os.environ if environ is None else environ
        self.settings = settings if settings is not None else config.load(self.environ)
        self.providers = registry(self.settings)
        self._cache = cache
        self._store = store
        self._open_cache = open_cache or cache_opener(self.settings, self.environ)
        self._open_store = open_store or _open_store
        self.transport = transport or Transport(self.settings.http, clock=clock)
        self.clock = clock
        self.flight = flight or SingleFlight(
            lambda key, blocking: self.cache.lock(key, blocking=blocking),
            on_warning=self.warn_once,
        )
        #: FRESH tokens by key: the entry, until when it is FRESH, the identity that owns it
        self._memory: dict[Key, tuple[Entry, float, Identity]] = {}
        self._identities: dict[tuple[str, str, tuple[tuple[str, str], ...]], Identity] = {}
        self._resolved: dict[tuple[str, str], Provider] = {}
        self._warned: set[str] = set()
        self._guard = threading.Lock()
        self._limiter = limiter
        self._identity_vars = {
            name: tuple((n, p.env_var(n), p.env_vars(n)[1:]) for n in p.identity)
            for name, p in self.providers.items()
        }

    # -- the parts -----------------------------------------------------------

    def warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            log.warning("%s", message)

    @property
    def cache(self) -> Cache:
        if self._cache is None:
            with self._guard:  # threads asking at once open it once
                if self._cache is None:
                    self._cache = self._open_cache(self.warn_once, self._fresh)
        return self._cache

    def _fresh(self, entry: Entry) -> bool:
        """Whether a cache may answer with ``entry`` without asking further (Redis's
        local copy): the broker judges, on its clock, the cache asks."""
        return entry.token.state(self.clock(), entry.leeway) is TokenState.FRESH

    @property
    def limiter(self) -> Limiter:
        """The rate budgets, shared like the cache (made on first use)."""
        if self._limiter is None:
            from keyfob import _paths
            from keyfob.ratelimit import Limiter

            with self._guard:
                if self._limiter is None:
                    # The SQLite file in the cache folder, shared by every machine
                    # on the Redis cache URL when there is one.
                    self._limiter = Limiter(
                        folder=_paths.cache_dir(),
                        cache_url=self.settings.cache_url,
                        max_wait=self.settings.limits.max_wait,
                        retries=self.settings.limits.retries,
                        signature=self.settings.signature,
                        on_warning=self.warn_once,
                    )
        return self._limiter

    def budget(self, provider: str, account: str | None = None) -> Budget:
        """The rate budget of (provider, account): its static limits from the provider.
        A signing provider's (OAuth 1.0a) is the user's where no account is named: X
        counts user-context requests per user (``keyfob wait`` and the adapters agree)."""
        p = self.provider(provider)
        fast = True
        if account is None and p.kind.signer is not None:
            try:
                signer = self.signer(provider)
            except KeyfobError:
                signer = None
            if signer is not None:
                account = signer.who
            else:
                # No user yet: the provider's own budget, which `keyfob wait`'s fast
                # path (keyed by --account alone) must not take from once one logs in.
                fast = False
        return self.limiter.budget(provider, account, p.rate_limits, fast=fast)

    @property
    def store(self) -> SecretStore:
        if self._store is None:
            self._store = self._open_store(self.environ)
        return self._store

    def provider(self, name: str) -> Provider:
        try:
            return self.providers[name]
        except KeyError:
            import difflib  # only on the way to an error

            near = difflib.get_close_matches(name, self.providers, n=1)
            known = f"known: {', '.join(sorted(self.providers))}"
            raise ConfigError(
                f"unknown provider {name!r}",
                hint=(f"did you mean {near[0]}? " if near else "")
                + f"{known}; declare others in {self.settings.path}",
            ) from None

    def resolved(self, p: Provider) -> Provider:
        """The provider with the endpoints its discovery document names."""
        return self.transport.run(self._resolve(p))

    def _resolve(self, p: Provider) -> Flow[Provider]:
        # By grant too: a login's --flow may use the provider with another grant.
        key = (p.name, p.grant)
        if key not in self._resolved:
            flow = p.kind.resolve(p) if p.kind.resolve is not None else None
            self._resolved[key] = (yield from attach(p, flow)) if flow is not None else p
        return self._resolved[key]

    def credentials(
        self,
        p: Provider,
        account: str,
        arguments: Mapping[str, Any],
        names: tuple[str, ...] | None = None,
    ) -> Credentials:
        """The secrets: arguments, then the environment, then the store: asked (and
        opened) only for what is still needed, so with every secret given a locked
        or broken keyring changes nothing."""
        names = names or p.secrets
        env_names = {n: p.env_vars(n) for n in p.secrets}
        service = p.service(account)
        creds = resolve(
            names,
            arguments=arguments,
            environ=self.environ,
            env_names=env_names,
            store=None,
            service=service,
        )
        complete = all(n in creds for n in p.required)
        rest = [n for n in names if n not in creds and not (complete and n in p.kind.stand_ins)]
        if rest:
            store = self.store
            for name in rest:
                value = store.get(service, name)
                if value:
                    creds.add(name, value, store.kind)
        return creds

    # -- whose token -------------------------------------------------------------

    def identity(self, p: Provider, account: str, arguments: Mapping[str, Any]) -> Identity:
        """Whose token is asked for (see :class:`Identity`); one per broker and names."""
        env = self.environ
        direct = tuple(
            [
                (name, value)
                for name, var, more in self._identity_vars[p.name]
                if (value := arguments.get(name) or env.get(var) or (more and _first(env, more)))
            ]
        )
        key = (p.name, account, direct)
        identity = self._identities.get(key)
        if identity is None:

            def stored(names: tuple[str, ...]) -> dict[str, str]:
                return self.credentials(p, account, {}, names).values

            identity = Identity(
                p.name, p.identity, dict(direct), stored, endpoint=p.endpoint, clock=self.clock
            )
            self._identities[key] = identity
        return identity

    def stored_changed(self) -> None:
        """The secret store changed: whose a token is must be asked of it again."""
        self._identities.clear()

    def forget(self, key: Key) -> None:
        """Forget the tokens of ``key``, in memory and in the cache."""
        self._memory.pop(key, None)
        self.stored_changed()
        self._cache_call("write", self.cache.delete, key)

    # -- the cache, never fatal ------------------------------------------------

    def _cache_call(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            self.warn_once(f"cannot {what} the token cache ({type(exc).__name__}); going on")
            return None

    def _cached_entry(self, key: Key) -> Entry | None:
        entry: Entry | None = self._cache_call("read", self.cache.get, key)
        return entry

    # -- a valid token -----------------------------------------------------------

    def get_token(
        self,
        provider: str,
        *,
        account: str | None = None,
        refresh: bool = False,
        **credentials: Any,
    ) -> Token:
        """A valid token: from memory, the cache, a refresh, or the provider's grant."""
        p, key, token = self._at_hand(provider, account, refresh, credentials)
        if token is not None:
            return token
        with self.flight(key):
            return self.transport.run(self._decide(p, key, refresh, credentials))

    def renew(self, provider: str, *, account: str | None = None, **credentials: Any) -> Token:
        """A new token now, the cheap way: the cached token renewed (its refresh token,
        iNaturalist's kept OAuth token), else the provider's grant (``keyfob refresh``)."""
        p = self.provider(provider)
        key = (p.name, account or "")
        with self.flight(key):
            return self.transport.run(self._decide(p, key, "renew", credentials))

    async def aget_token(
        self,
        provider: str,
        *,
        account: str | None = None,
        refresh: bool = False,
        **credentials: Any,
    ) -> Token:
        """:meth:`get_token` for an event loop: the same decision, driven by the async
        transport; waiting for a lock or an answer never blocks the loop."""
        p, key, token = self._at_hand(provider, account, refresh, credentials)
        if token is not None:
            return token
        async with self.flight.hold(key):
            return await self.transport.arun(self._decide(p, key, refresh, credentials))

    def _at_hand(
        self, provider: str, account: str | None, refresh: bool, arguments: Mapping[str, Any]
    ) -> tuple[Provider, Key, Token | None]:
        """The provider, the key, and a FRESH token of the identity's from memory or the
        cache, without a lock (None with ``refresh``)."""
        if not refresh:
            token = self.peek(provider, account=account, **arguments)
            if token is not None:
                return self.providers[provider], (provider, account or ""), token
        p = self.provider(provider)
        key = (p.name, account or "")
        if refresh:
            return p, key, None
        return p, key, self._usable(p, key, self._cached_entry(key), arguments)

    def _decide(
        self, p: Provider, key: Key, refresh: bool | str, arguments: Mapping[str, Any]
    ) -> Flow[Token]:
        """Under the single-flight lock: look again, then renew or acquire, then save.

        ``refresh``: False, look again first; ``"renew"`` (``keyfob refresh``), renew
        the cached token, else the grant; True, no cached token of any kind: the
        provider's grant with the secrets, unless the cached token is itself the only
        secret there is (a renewed personal token supersedes the one it came from).
        """
        if p.kind.signer is not None:  # no bearer token: its acquire says what to use instead
            return (yield from p.kind.acquire(p, Credentials(), self.clock()))
        entry = self._cached_entry(key)
        if not refresh:
            # Look again: another thread or process may have just saved one.
            token = self._usable(p, key, entry, arguments)
            if token is not None:
                return token
        creds = self.credentials(p, key[1], arguments)
        if entry is not None and not self.identity(p, key[1], arguments).owns(entry):
            entry = None  # another account's token: never crosses over
        old = entry.token if entry else None
        if refresh is True and not p.kind.rotates:
            rest = _copy(creds, without="refresh_token")
            if not p.kind.supersedes and not ("refresh_token" in creds and p.kind.missing(p, rest)):
                # The grant has its own secrets: no kept token of any kind is used.
                old, creds = None, rest
            # Else the kept token is the only secret there is (a renewed personal
            # token, a rotated refresh token): renewing it is the grant.
        token = yield from self._obtain(p, key, creds, old, bool(refresh))
        self.save(p, key, token, creds, arguments)
        return token

    def peek(
        self, provider: str, *, account: str | None = None, **credentials: Any
    ) -> Token | None:
        """The token in memory if it is FRESH and still the identity's; never blocks."""
        key = (provider, account or "")
        hit = self._memory.get(key)
        if hit is None or self.clock() >= hit[1]:
            return None
        p = self.providers.get(provider)
        if p is None:
            return None
        identity = self.identity(p, key[1], credentials)
        # The same identity, all of it given directly, owns what it owned; one read
        # from the store is asked again once it is STORE_TRUST old.
        if (identity is not hit[2] or identity.from_store) and not identity.owns(hit[0]):
            return None
        return hit[0].token

    def cached(
        self, provider: str, *, account: str | None = None, **credentials: Any
    ) -> Token | None:
        """The FRESH token of this identity from memory or the cache, or None; never a
        request."""
        token = self.peek(provider, account=account, **credentials)
        if token is not None:
            return token
        p = self.provider(provider)
        key = (p.name, account or "")
        return self._usable(p, key, self._cached_entry(key), credentials)

    def _usable(
        self, p: Provider, key: Key, entry: Entry | None, arguments: Mapping[str, Any]
    ) -> Token | None:
        """The entry's token if it is FRESH and the identity's; remembered in memory."""
        if entry is None or entry.token.state(self.clock(), p.leeway) is not TokenState.FRESH:
            return None
        identity = self.identity(p, key[1], arguments)
        if not identity.owns(entry):
            return None
        now = self.clock()
        if not identity.direct and (
            entry.identity_source != "store" or not 0 <= now - entry.checked < STORE_TRUST / 2
        ):
            # Compared with the store just now: say so, so that the cached-token path
            # can answer for a while (_identity.STORE_TRUST).
            entry = entry.replace(identity_source="store", checked=now)
            self._cache_call("write", self.cache.put, key, entry)
        self._memory[key] = (entry, entry.token.fresh_until(p.leeway), identity)
        return entry.token

    # -- renew or acquire, then save ---------------------------------------------------

    def obtain(
        self, p: Provider, key: Key, creds: Credentials, old: Token | None, *, refresh: bool
    ) -> Token:
        """A new token: renewed from ``old`` when it can be (not with ``refresh``: then
        only a STALE token that cannot be renewed is kept), else the provider's grant."""
        return self.transport.run(self._obtain(p, key, creds, old, refresh))

    def _obtain(
        self, p: Provider, key: Key, creds: Credentials, old: Token | None, refresh: bool
    ) -> Flow[Token]:
        kind = p.kind
        now = self.clock()
        p = yield from self._resolve(p)
        if kind.rotates:
            from keyfob import rotation

            book = rotation.Book(self.store, p.service(key[1]))
            if book.known(old, creds):  # a refresh token to rotate (or only spent ones)
                return (yield from self._rotate(p, key, creds, old, refresh, book))
        refused: InvalidCredentials | None = None
        if old is not None:
            flow = kind.renew(p, old, creds, now)
            if flow is not None:
                try:
                    token: Token = yield from attach(p, flow)
                except InvalidCredentials as exc:
                    log.info("%s: renewing refused (%s); getting a new token", p.name, exc.error)
                    refused = exc
                except (TransportError, ProviderError) as exc:
                    if not refresh and old.state(self.clock(), p.leeway) is TokenState.STALE:
                        self.warn_once(
                            f"{p.name}: could not refresh ({exc}); using the current "
                            "token while it lasts"
                        )
                        return old
                    raise self._hinted(p, exc, key[1]) from None
                else:
                    self._supersede(p, key, creds, token)
                    return token
        self.require(p, key[1], creds)
        try:
            token = yield from attach(p, kind.acquire(p, creds, now))
            if token.refresh_token and token.refresh_token != creds.get("refresh_token"):
                # The grant was a refresh (a stored refresh token) that rotated it.
                self._supersede(p, key, creds, token)
            if (
                refused is not None
                and old is not None
                and token.access_token in (old.access_token, old.refresh_token)
                and token.access_token in {v.strip() for v in creds.values.values()}
            ):
                # The acquire handed back the very secret that was refused (a revoked
                # personal or pasted token): the only one there is. A token from a new
                # grant may equal the old one (iNaturalist's JWT of the same second).
                raise refused
            if token.state(self.clock(), p.leeway) is not TokenState.FRESH:
                flow = kind.renew(p, token, creds, now)
                if flow is not None:  # a personal token in its last tenth: refresh it now
                    token = yield from attach(p, flow)
                    self._supersede(p, key, creds, token)
        except KeyfobError as exc:
            raise self._hinted(p, exc, key[1]) from None
        if token.state(self.clock(), p.leeway) is TokenState.EXPIRED:
            raise InvalidCredentials(
                f"the {p.name} token has expired",
                hint=f"run `{login_command(p, key[1])}` to give a new one",
            )
        log.info("%s: got a new token (%s)", p.name, describe_expiry(token, self.clock()))
        return token

    def _rotate(
        self,
        p: Provider,
        key: Key,
        creds: Credentials,
        old: Token | None,
        refresh: bool,
        book: Book,
    ) -> Flow[Token]:
        """Renew with a refresh token the server rotates (:mod:`keyfob.rotation`): never
        a spent one; the new one kept in the store before the token is used."""
        candidates = book.candidates(old, creds)
        if not candidates:
            raise InvalidCredentials(
                f"every {p.name} refresh token keyfob knows has been used already",
                hint=f"log in again: run `{login_command(p, key[1])}`",
            )
        refused: InvalidCredentials | None = None
        for value, source in candidates:
            attempt = _copy(creds)
            attempt.add("refresh_token", value, source)
            try:
                token: Token = yield from attach(p, p.kind.acquire(p, attempt, self.clock()))
            except InvalidCredentials as exc:
                log.info("%s: a refresh token was refused (%s)", p.name, exc.error)
                refused = exc
                continue
            except (TransportError, ProviderError) as exc:
                if (
                    old is not None
                    and not refresh
                    and old.state(self.clock(), p.leeway) is (TokenState.STALE)
                ):
                    self.warn_once(
                        f"{p.name}: could not refresh ({exc}); using the current token "
                        "while it lasts"
                    )
                    return old
                raise self._hinted(p, exc, key[1]) from None
            except KeyfobError as exc:
                raise self._hinted(p, exc, key[1]) from None
            self._keep_rotated(p, key, book, attempt, token, creds)
            log.info("%s: refreshed (%s)", p.name, describe_expiry(token, self.clock()))
            return token
        assert refused is not None
        if not refused.hint:
            if refused.error in ("invalid_client", "unauthorized_client"):
                refused.hint = (
                    f"check the client ID and secret, then run `{login_command(p, key[1])}`"
                )
            else:
                refused.hint = (
                    f"the refresh token was used or revoked: log in again, run "
                    f"`{login_command(p, key[1])}`"
                )
        raise refused

    def _keep_rotated(
        self,
        p: Provider,
        key: Key,
        book: Book,
        attempt: Credentials,
        token: Token,
        creds: Credentials,
    ) -> None:
        """The rotated refresh token into the store (first: the only one that works),
        the spent one (``attempt``'s) noted; if the store refuses, into the cache at
        least, then the error."""
        sent = attempt.values["refresh_token"]
        new = token.refresh_token
        if not new or new == sent:
            return  # not rotated
        try:
            book.record(sent, new, direct=attempt.given("refresh_token"))
        except KeyfobError as exc:
            self.save(p, key, token, creds)
            exc.hint = (
                "the new refresh token is kept in the token cache only until the secret "
                f"store can be written: {exc.hint or 'check it'}"
            )
            raise
        finally:
            self.stored_changed()
        creds.add("refresh_token", new, self.store.kind)

    def save(
        self,
        p: Provider,
        key: Key,
        token: Token,
        creds: Credentials,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        """Keep ``token`` in the cache, and in memory for the identity ``arguments``
        (with the environment and the store) name: whose it is."""
        entry = Entry(
            token,
            fingerprint=_fingerprint(p, creds),
            label=p.kind.label(p, creds),
            identity_env=p.identity_env,
            identity_source=_identity_source(p, creds),
            leeway=p.leeway,
            config_sig=self.settings.signature,
            endpoint=p.endpoint,
            checked=self.clock(),
        )
        self._cache_call("write", self.cache.put, key, entry)
        identity = self.identity(p, key[1], arguments or {})
        self._memory[key] = (entry, token.fresh_until(p.leeway), identity)

    def _supersede(self, p: Provider, key: Key, creds: Credentials, token: Token) -> None:
        """A renewed token replaces what the store holds: TreeSnap's personal token,
        or a refresh token the server rotated (the old one no longer works)."""
        name = p.kind.supersedes
        if name and creds.stored(name):
            self.store.set(p.service(key[1]), name, token.access_token)
            self.stored_changed()
        stored = creds.get("refresh_token")
        if (
            stored
            and creds.stored("refresh_token")
            and token.refresh_token
            and token.refresh_token != stored
        ):
            self.store.set(p.service(key[1]), "refresh_token", token.refresh_token)

    def _hinted(self, p: Provider, exc: KeyfobError, account: str = "") -> KeyfobError:
        if isinstance(exc, InvalidCredentials) and not exc.hint:
            exc.hint = f"check the secrets, then run `{login_command(p, account)}`"
        return exc

    def require(self, p: Provider, account: str, creds: Credentials) -> None:
        """CredentialsMissing, naming every place looked, unless the grant has its secrets."""
        missing = p.kind.missing(p, creds)
        if not missing:
            return
        where = ", ".join(p.env_var(n) for n in missing)
        raise CredentialsMissing(
            f"{p.name} needs {', '.join(missing)}: not in the arguments, the environment "
            f"({where}) or the {self.store.kind} (service {p.service(account)})",
            hint=f"run `{login_command(p, account)}`, or set {where}",
        )

    # -- a signing provider (OAuth 1.0a) ---------------------------------------------

    def signer(
        self, provider: str, *, account: str | None = None, **credentials: Any
    ) -> Signer | None:
        """What signs each request of a provider that signs (OAuth 1.0a), from its
        secrets (they do not expire: no cache, no renewal); None for a bearer provider."""
        p = self.provider(provider)
        make = p.kind.signer
        if make is None:
            return None
        creds = self.credentials(p, account or "", credentials)
        self.require(p, account or "", creds)
        return make(p, creds)

    def signing_secrets(
        self, provider: str, *, account: str | None = None, **credentials: Any
    ) -> dict[str, str]:
        """The four secrets a signing provider's requests are signed with, for a child
        process that signs its own (``keyfob exec``): ``consumer_key``,
        ``consumer_secret``, ``token``, ``token_secret``."""
        p = self.provider(provider)
        creds = self.credentials(p, account or "", credentials)
        self.require(p, account or "", creds)
        key_name, secret_name = p.kind.client
        return {
            "consumer_key": creds.values[key_name],
            "consumer_secret": creds.get(secret_name) or "",
            "token": creds.values["token"],
            "token_secret": creds.values["token_secret"],
        }

    # -- after a 401 -----------------------------------------------------------

    def invalidate(self, provider: str, token: Token, *, account: str | None = None) -> None:
        """The server refused ``token``: forget it (keep its refresh token)."""
        key = (provider, account or "")
        hit = self._memory.get(key)
        if hit is not None and hit[0].token.access_token == token.access_token:
            del self._memory[key]
        try:
            # Only if the cache still holds this token: another thread, process or
            # machine may already have saved a newer one. The refresh token stays.
            self.cache.drop(key, token)
        except Exception as exc:
            self.warn_once(f"cannot write the token cache ({type(exc).__name__}); going on")
        else:
            log.info("%s: the server refused a token; dropping it from the cache", provider)


def _first(env: Mapping[str, str], variables: tuple[str, ...]) -> str | None:
    """The value of the first of ``variables`` set (most providers name one)."""
    for var in variables:
        value = env.get(var)
        if value:
            return value
    return None


def _copy(creds: Credentials, without: str = "") -> Credentials:
    """A copy of ``creds``, leaving out ``without``."""
    out = Credentials()
    for name, value in creds.values.items():
        if name != without:
            out.add(name, value, creds.sources[name])
    return out


def _fingerprint(p: Provider, creds: Credentials) -> str:
    from keyfob._identity import fingerprint

    values = {n: creds.values[n] for n in p.identity if n in creds}
    return fingerprint(p.name, values) if values else ""


def _identity_source(p: Provider, creds: Credentials) -> str:
    """Whether the identity was given directly (arguments, environment) or stored."""
    direct = any(creds.given(n) for n in p.identity)
    return "direct" if direct else "store"


def describe_expiry(token: Token, now: float) -> str:
    if token.expires is None:
        return "does not expire"
    return f"expires in {max(0, int(token.expires - now))} s"
