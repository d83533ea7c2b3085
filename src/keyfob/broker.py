"""The one place that decides: memory → cache → lock → look again → renew or acquire → save.

Single flight per (provider, account): a per-key lock in the process and the
cache's per-key lock across processes (a file lock for SQLite), with a second
look in the cache once the lock is held, so however many threads and
processes ask at once, the token endpoint sees one request.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from keyfob import _identity, _paths, config
from keyfob.cache import Entry, Key
from keyfob.cache.base import Cache, CacheUnavailable
from keyfob.errors import (
    ConfigError,
    CredentialsMissing,
    InvalidCredentials,
    KeyfobError,
    ProviderError,
    TransportError,
)
from keyfob.provider import Provider, kind_of, registry
from keyfob.secretstore import Credentials, SecretStore, open_store, resolve
from keyfob.token import Token, TokenState
from keyfob.transport import Person, Transport

log = logging.getLogger("keyfob")

#: test-only: switch off every lock, to show the single-flight tests can fail
NO_LOCKS_ENV = "KEYFOB_TEST_NO_LOCKS"


@dataclass(frozen=True)
class StatusRow:
    provider: str
    account: str
    kind: str
    expires_in: float | None  # seconds; None: no token cached / never expires
    has_token: bool
    state: str
    secrets: Mapping[str, str]  # secret name -> where it is kept


class Broker:
    def __init__(
        self,
        *,
        settings: config.Settings | None = None,
        cache: Cache | None = None,
        store: SecretStore | None = None,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.environ = os.environ if environ is None else environ
        self.settings = settings if settings is not None else config.load(self.environ)
        self.providers = registry(self.settings)
        self._cache = cache
        self._store = store
        self.transport = transport or Transport(self.settings.http, clock=clock)
        self.clock = clock
        self._memory: dict[Key, tuple[Token, float, tuple[str | None, ...]]] = {}
        self._locks: dict[Key, threading.Lock] = {}
        self._guard = threading.Lock()
        self._resolved: dict[str, Provider] = {}
        self._warned: set[str] = set()
        self._identity_vars = {
            name: tuple((n, p.env_var(n)) for n in p.identity) for name, p in self.providers.items()
        }

    # -- the parts -----------------------------------------------------------

    def warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            log.warning("%s", message)

    @property
    def cache(self) -> Cache:
        if self._cache is None:
            with self._guard:
                if self._cache is None:
                    self._cache = self._open_cache()
        return self._cache

    def _open_cache(self) -> Cache:
        from keyfob.cache.memory import MemoryCache
        from keyfob.cache.sqlite import SQLiteCache

        url = self.settings.cache_url  # a redis:// or rediss:// URL: Settings checked it
        local: Cache
        try:
            local = SQLiteCache(_paths.cache_dir(), on_warning=self.warn_once)
        except CacheUnavailable as exc:
            self.warn_once(f"{exc}; tokens are not cached between runs")
            local = MemoryCache()
        if not url:
            return local
        from keyfob.cache.redis import RedisCache  # imports redis: only when configured

        def fresh(entry: Entry) -> bool:
            # The broker judges, the cache asks: a FRESH local copy needs no Redis.
            return entry.token.state(self.clock(), entry.leeway) is TokenState.FRESH

        return RedisCache(url, local=local, trust_local=fresh, on_warning=self.warn_once)

    @property
    def store(self) -> SecretStore:
        if self._store is None:
            self._store = open_store(self.environ)
        return self._store

    def provider(self, name: str) -> Provider:
        try:
            return self.providers[name]
        except KeyError:
            raise ConfigError(
                f"unknown provider {name!r}",
                hint=f"known: {', '.join(sorted(self.providers))}; declare others in "
                f"{self.settings.path}",
            ) from None

    def _resolve_endpoints(self, p: Provider) -> Provider:
        if p.name not in self._resolved:
            resolve = kind_of(p).resolve
            flow = resolve(p) if resolve is not None else None
            self._resolved[p.name] = self.transport.run(flow) if flow is not None else p
        return self._resolved[p.name]

    # -- identity --------------------------------------------------------------

    def _direct(self, p: Provider, arguments: Mapping[str, Any]) -> tuple[str | None, ...]:
        env = self.environ
        return tuple(
            arguments.get(name) or env.get(var) or None for name, var in self._identity_vars[p.name]
        )

    def _trusted(self, p: Provider, entry: Entry, arguments: Mapping[str, Any]) -> bool | None:
        """Does the cached entry belong to the identity asked for? ``None``: the
        environment and arguments cannot tell; only the secret store can."""
        env = dict(self.environ)
        for name, var in self._identity_vars[p.name]:
            if arguments.get(name):
                env[var] = arguments[name]
        return _identity.trusts(p.name, entry, env)

    def credentials(
        self,
        p: Provider,
        account: str,
        arguments: Mapping[str, Any],
        names: tuple[str, ...] | None = None,
    ) -> Credentials:
        return resolve(
            names or p.secrets,
            arguments=arguments,
            environ=self.environ,
            env_names={n: p.env_var(n) for n in p.secrets},
            store=self.store,
            service=p.service(account),
        )

    def _fingerprint(self, p: Provider, creds: Credentials) -> str:
        values = {n: creds.values[n] for n in p.identity if n in creds}
        return _identity.fingerprint(p.name, values) if values else ""

    # -- locks -----------------------------------------------------------------

    def _locks_off(self) -> bool:
        return self.environ.get(NO_LOCKS_ENV) == "1"

    @contextlib.contextmanager
    def _single_flight(self, key: Key) -> Iterator[None]:
        if self._locks_off():
            yield
            return
        with self._guard:
            local = self._locks.setdefault(key, threading.Lock())
        with local:
            try:
                shared = self.cache.lock(key)
            except Exception as exc:  # a lock folder gone since: go on unlocked
                self.warn_once(f"cannot lock the token cache ({type(exc).__name__})")
                shared = contextlib.nullcontext()
            with shared:
                yield

    # -- the cache, never fatal ------------------------------------------------

    def _cache_get(self, key: Key) -> Entry | None:
        try:
            return self.cache.get(key)
        except Exception as exc:
            self.warn_once(f"cannot read the token cache ({type(exc).__name__}); going on")
            return None

    def _cache_put(self, key: Key, entry: Entry) -> None:
        try:
            self.cache.put(key, entry)
        except Exception as exc:
            self.warn_once(f"cannot write the token cache ({type(exc).__name__}); going on")

    def _cache_delete(self, key: Key) -> None:
        try:
            self.cache.delete(key)
        except Exception as exc:
            self.warn_once(f"cannot write the token cache ({type(exc).__name__}); going on")

    # -- get_token -------------------------------------------------------------

    def get_token(
        self,
        provider: str,
        *,
        account: str | None = None,
        refresh: bool = False,
        **credentials: Any,
    ) -> Token:
        """A valid token: from memory, the cache, a refresh, or the provider's grant."""
        if not refresh:
            token = self.peek(provider, account=account, **credentials)
            if token is not None:
                return token
        return self._get(self.provider(provider), (provider, account or ""), refresh, credentials)

    def peek(
        self, provider: str, *, account: str | None = None, **credentials: Any
    ) -> Token | None:
        """The token in memory if it is FRESH and still the identity's; never blocks."""
        hit = self._memory.get((provider, account or ""))
        if hit is not None and self.clock() < hit[1]:
            p = self.providers.get(provider)
            if p is not None and hit[2] == self._direct(p, credentials):
                return hit[0]
        return None

    def cached(
        self, provider: str, *, account: str | None = None, **credentials: Any
    ) -> Token | None:
        """The FRESH token of this identity from memory or the cache, or None; never a
        request. Where the environment cannot tell whose it is, the secret store tells."""
        token = self.peek(provider, account=account, **credentials)
        if token is not None:
            return token
        p = self.provider(provider)
        key = (p.name, account or "")
        entry = self._cache_get(key)
        if entry is None or entry.token.state(self.clock(), p.leeway) is not TokenState.FRESH:
            return None
        trusted = self._trusted(p, entry, credentials)
        if trusted is None:
            creds = self.credentials(p, key[1], credentials, p.identity)
            trusted = self._fingerprint(p, creds) == entry.fingerprint
        if not trusted:
            return None
        self._remember(p, key, entry.token, credentials)
        return entry.token

    def _remember(self, p: Provider, key: Key, token: Token, arguments: Mapping[str, Any]) -> None:
        self._memory[key] = (token, token.fresh_until(p.leeway), self._direct(p, arguments))

    def _usable(
        self, p: Provider, entry: Entry | None, arguments: Mapping[str, Any], now: float
    ) -> Token | None:
        if entry is None or self._trusted(p, entry, arguments) is not True:
            return None
        if entry.token.state(now, p.leeway) is TokenState.FRESH:
            return entry.token
        return None

    def _get(self, p: Provider, key: Key, refresh: bool, arguments: Mapping[str, Any]) -> Token:
        if not refresh:
            token = self._usable(p, self._cache_get(key), arguments, self.clock())
            if token is not None:
                self._remember(p, key, token, arguments)
                return token
        with self._single_flight(key):
            entry = self._cache_get(key)
            if not refresh and not self._locks_off():
                # Look again: another thread or process may have just saved one.
                token = self._usable(p, entry, arguments, self.clock())
                if token is not None:
                    self._remember(p, key, token, arguments)
                    return token
            creds = self.credentials(p, key[1], arguments)
            fingerprint = self._fingerprint(p, creds)
            if (
                entry is not None
                and entry.fingerprint != fingerprint
                and (entry.fingerprint and fingerprint)
            ):
                entry = None  # another account's token: never crosses over
            now = self.clock()
            if (
                entry is not None
                and not refresh
                and entry.token.state(now, p.leeway) is TokenState.FRESH
            ):
                if entry.identity_source != self._identity_source(p, creds):
                    # Saved from the environment, now found in the store: say so,
                    # so that the cached-token path can answer next time.
                    self._save(p, key, entry.token, creds, fingerprint, arguments)
                else:
                    self._remember(p, key, entry.token, arguments)
                return entry.token
            token = self._obtain(p, key, creds, entry.token if entry else None, refresh, now)
            self._save(p, key, token, creds, fingerprint, arguments)
            return token

    def _obtain(
        self,
        p: Provider,
        key: Key,
        creds: Credentials,
        old: Token | None,
        refresh: bool,
        now: float,
    ) -> Token:
        kind = kind_of(p)
        p = self._resolve_endpoints(p)
        refused: InvalidCredentials | None = None
        if old is not None:
            flow = kind.renew(p, old, creds, now)
            if flow is not None:
                try:
                    token: Token = self.transport.run(flow)
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
                    raise self._hinted(p, exc) from None
                else:
                    self._supersede(p, key, creds, token)
                    return token
        self._require(p, key[1], creds)
        try:
            token = self.transport.run(kind.acquire(p, creds, now))
            if refused is not None and old is not None and token.access_token == old.access_token:
                raise refused  # the refused token is the only one there is (a revoked personal one)
            if token.state(self.clock(), p.leeway) is not TokenState.FRESH:
                flow = kind.renew(p, token, creds, now)
                if flow is not None:  # a personal token in its last tenth: refresh it now
                    token = self.transport.run(flow)
                    self._supersede(p, key, creds, token)
        except KeyfobError as exc:
            raise self._hinted(p, exc) from None
        if token.state(self.clock(), p.leeway) is TokenState.EXPIRED:
            raise InvalidCredentials(
                f"the {p.name} token has expired",
                hint=f"run `keyfob login {p.name}` to give a new one",
            )
        log.info("%s: got a new token (%s)", p.name, _describe_expiry(token, self.clock()))
        return token

    def _supersede(self, p: Provider, key: Key, creds: Credentials, token: Token) -> None:
        """A renewed token replaces what the store holds: TreeSnap's personal token,
        or a refresh token the server rotated (the old one no longer works)."""
        name = kind_of(p).supersedes
        if name and creds.sources.get(name) == self.store.kind:
            self.store.set(p.service(key[1]), name, token.access_token)
        stored = creds.get("refresh_token")
        if (
            stored
            and creds.sources.get("refresh_token") == self.store.kind
            and token.refresh_token
            and token.refresh_token != stored
        ):
            self.store.set(p.service(key[1]), "refresh_token", token.refresh_token)

    def _hinted(self, p: Provider, exc: KeyfobError) -> KeyfobError:
        if isinstance(exc, InvalidCredentials) and not exc.hint:
            exc.hint = f"check the secrets, then run `keyfob login {p.name}`"
        return exc

    def _require(self, p: Provider, account: str, creds: Credentials) -> None:
        if "token" in creds and (p.grant == "paste" or p.kind == "inaturalist"):
            return
        if "refresh_token" in creds and p.kind == "oauth2":
            return
        missing = [n for n in p.required if n not in creds]
        if not missing:
            return
        where = ", ".join(p.env_var(n) for n in missing)
        account_flag = f" --account {account}" if account else ""
        raise CredentialsMissing(
            f"{p.name} needs {', '.join(missing)}: not in the arguments, the environment "
            f"({where}) or the {self.store.kind} (service {p.service(account)})",
            hint=f"run `keyfob login {p.name}{account_flag}`, or set {where}",
        )

    def _identity_source(self, p: Provider, creds: Credentials) -> str:
        direct = any(creds.sources.get(n) not in (None, self.store.kind) for n in p.identity)
        return "direct" if direct else "store"

    def _save(
        self,
        p: Provider,
        key: Key,
        token: Token,
        creds: Credentials,
        fingerprint: str,
        arguments: Mapping[str, Any],
    ) -> None:
        entry = Entry(
            token,
            fingerprint=fingerprint,
            label=_label(p, creds),
            identity_env=p.identity_env,
            identity_source=self._identity_source(p, creds),
            leeway=p.leeway,
            config_sig=self.settings.signature,
        )
        self._cache_put(key, entry)
        self._remember(p, key, token, arguments)

    # -- after a 401 -----------------------------------------------------------

    def invalidate(self, provider: str, token: Token, *, account: str | None = None) -> None:
        """The server refused ``token``: forget it (keep its refresh token)."""
        key = (provider, account or "")
        hit = self._memory.get(key)
        if hit is not None and hit[0].access_token == token.access_token:
            del self._memory[key]
        try:
            # Only if the cache still holds this token: another thread, process or
            # machine may already have saved a newer one. The refresh token stays.
            self.cache.drop(key, token)
        except Exception as exc:
            self.warn_once(f"cannot write the token cache ({type(exc).__name__}); going on")
        else:
            log.info("%s: the server refused a token; dropping it from the cache", provider)

    # -- login, logout, secrets --------------------------------------------------

    def set_credentials(self, provider: str, *, account: str | None = None, **secrets: str) -> None:
        p = self.provider(provider)
        unknown = sorted(set(secrets) - set(p.secrets))
        if unknown:
            raise ConfigError(
                f"{p.name} has no secret named {', '.join(unknown)}",
                hint=f"its secrets: {', '.join(p.secrets)}",
            )
        for name, value in secrets.items():
            if value:
                self.store.set(p.service(account or ""), name, value)
        self._forget_tokens((p.name, account or ""))

    def get_credentials(self, provider: str, *, account: str | None = None) -> dict[str, str]:
        p = self.provider(provider)
        service = p.service(account or "")
        found = {}
        for name in p.secrets:
            value = self.store.get(service, name)
            if value:
                found[name] = value
        return found

    def login(
        self,
        provider: str,
        *,
        account: str | None = None,
        flow: str | None = None,
        person: Person | None = None,
        timeout: float = 300.0,
        **credentials: Any,
    ) -> Token:
        """Get a first token with the given secrets; only then store them.

        ``flow="browser"`` (authorization code + PKCE) and ``flow="device"``
        (RFC 8628) need a person: ``person`` carries out what they ask (default:
        :class:`keyfob.loopback.Terminal`), within ``timeout`` seconds.
        """
        p = self.provider(provider)
        key = (p.name, account or "")
        flow = flow or INTERACTIVE_GRANTS.get(p.grant)
        names = flow_secrets(p, flow)
        given = {k: v for k, v in credentials.items() if v}
        if flow in ("browser", "device"):
            return self._login_person(p, key, flow, names, given, person, timeout)
        creds = resolve(
            names,
            arguments=given,
            environ=self.environ,
            env_names={n: p.env_var(n) for n in p.secrets},
            store=None,
            service="",
        )
        if flow == "paste" and "token" not in creds:
            raise CredentialsMissing(
                f"{p.name}: no token to paste",
                hint=f"set {p.env_var('token')}, or run `keyfob login {p.name} --flow paste` "
                "in a terminal to paste it",
            )
        stored = self.credentials(p, key[1], {}, names) if len(creds.values) < len(names) else None
        for name in names:
            if name not in creds and stored is not None and name in stored:
                creds.add(name, stored.values[name], stored.sources[name])
        if flow != "paste":
            creds.values.pop("token", None)
        with self._single_flight(key):
            self._require(p, key[1], creds)
            token = self._obtain(p, key, creds, None, True, self.clock())
            for name in names:
                if name in creds and creds.sources[name] != self.store.kind:
                    self.store.set(p.service(key[1]), name, creds.values[name])
                    if creds.sources[name] != "argument":
                        creds.sources[name] = self.store.kind  # from now on, found there
            self._save(p, key, token, creds, self._fingerprint(p, creds), {})
        return token

    def _login_person(
        self,
        p: Provider,
        key: Key,
        flow: str,
        names: tuple[str, ...],
        given: Mapping[str, Any],
        person: Person | None,
        timeout: float,
    ) -> Token:
        kind = kind_of(p)
        if kind.interactive is None:
            raise ConfigError(f"{p.name} has no {flow} login", hint="use --flow password or paste")
        creds = self.credentials(p, key[1], given, names)
        client_id = kind.client[0]
        if client_id not in creds:
            raise CredentialsMissing(
                f"a {flow} login to {p.name} needs {client_id}",
                hint=f"set {p.env_var(client_id)}, or run `keyfob login {p.name}` in a terminal",
            )
        resolved = self._resolve_endpoints(p)
        if person is None:
            from keyfob.loopback import Terminal

            person = Terminal()
        # The person may take minutes: no lock is held meanwhile, only to save.
        token: Token = self.transport.run(
            kind.interactive(resolved, creds, flow, clock=self.clock, timeout=timeout), person
        )
        for name, value in (kind.identify(p, token) if kind.identify else {}).items():
            if name not in creds:
                creds.add(name, value, "login")
                names = (*names, name)
        with self._single_flight(key):
            service = p.service(key[1])
            for name in names:
                if name in creds and creds.sources[name] != self.store.kind:
                    self.store.set(service, name, creds.values[name])
                    if creds.sources[name] != "argument":
                        creds.sources[name] = self.store.kind  # from now on, found there
            if token.refresh_token and "refresh_token" in p.secrets:
                # A lost cache still renews without a person.
                self.store.set(service, "refresh_token", token.refresh_token)
                creds.add("refresh_token", token.refresh_token, self.store.kind)
            self._save(p, key, token, creds, self._fingerprint(p, creds), {})
        log.info("%s: logged in (%s)", p.name, _describe_expiry(token, self.clock()))
        return token

    def _forget_tokens(self, key: Key) -> None:
        self._memory.pop(key, None)
        self._cache_delete(key)

    def logout(self, provider: str, *, account: str | None = None, revoke: bool = False) -> bool:
        """Forget cached tokens and stored secrets; ``revoke`` at the server first.
        Returns whether a revocation was sent."""
        p = self.provider(provider)
        key = (p.name, account or "")
        revoked = False
        if revoke:
            entry = self._cache_get(key)
            token = entry.token if entry else None
            if token is not None:
                creds = self.credentials(p, key[1], {})
                resolved = self._resolve_endpoints(p)
                flow = kind_of(p).revoke(resolved, token, creds)
                if flow is None:
                    self.warn_once(
                        f"{p.name} cannot revoke tokens at the server; forgetting them here only"
                    )
                else:
                    try:
                        self.transport.run(flow)
                        revoked = True
                    except InvalidCredentials:
                        revoked = True  # the server no longer knows it: as good as revoked
        self._forget_tokens(key)
        service = p.service(key[1])
        for name in p.secrets:
            self.store.delete(service, name)
        return revoked

    # -- status ------------------------------------------------------------------

    def status(self, provider: str | None = None) -> list[StatusRow]:
        names = [self.provider(provider).name] if provider else sorted(self.providers)
        cached: dict[Key, Entry] = {}
        try:
            cached = {k: e for k, e in self.cache.entries() if k[0] in names}
        except Exception as exc:
            self.warn_once(f"cannot read the token cache ({type(exc).__name__})")
        now = self.clock()
        rows = []
        accounts = {(n, "") for n in names} | set(cached)
        for name, account in sorted(accounts):
            p = self.providers[name]
            entry = cached.get((name, account))
            creds = self.credentials(p, account, {})
            if entry is None and not creds.values:
                continue
            token = entry.token if entry else None
            rows.append(
                StatusRow(
                    provider=name,
                    account=account or (entry.label if entry else "") or _label(p, creds),
                    kind=_token_kind(token) if token else "-",
                    expires_in=(token.expires - now) if token and token.expires else None,
                    has_token=token is not None,
                    state=token.state(now, p.leeway).value if token else "none",
                    secrets=dict(creds.sources),
                )
            )
        return rows


#: the login flow a grant's tokens come from
INTERACTIVE_GRANTS = {"authorization_code": "browser", "device_code": "device"}


def flow_secrets(p: Provider, flow: str | None) -> tuple[str, ...]:
    """The secrets a login flow asks for."""
    if flow == "paste":
        return ("token",)
    if flow in ("browser", "device"):
        return kind_of(p).client
    if p.kind != "oauth2":
        return tuple(n for n in p.secrets if n != "token")
    if flow == "client":
        return ("client_id", "client_secret")
    if flow == "password" or (flow is None and p.grant == "password"):
        return ("client_id", "client_secret", "username", "password")
    if flow is None and p.grant == "paste":
        return ("token",)
    if flow is None and p.grant == "refresh_token":
        return ("client_id", "client_secret", "refresh_token")
    return ("client_id", "client_secret")


def _label(p: Provider, creds: Credentials) -> str:
    fn = kind_of(p).label
    return fn(p, creds) if fn else ""


def _token_kind(token: Token) -> str:
    from keyfob import _jwt

    kind = "JWT" if _jwt.claims(token.access_token) else "opaque"
    return kind + (" + refresh" if token.refresh_token else "")


def _describe_expiry(token: Token, now: float) -> str:
    if token.expires is None:
        return "does not expire"
    return f"expires in {max(0, int(token.expires - now))} s"


_default: Broker | None = None
_default_lock = threading.Lock()


def default() -> Broker:
    """The process's broker, made on first use from the environment and config.toml."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Broker()
    return _default


def reset() -> None:
    """Forget the process's broker (tests that change KEYFOB_HOME call this)."""
    global _default
    with _default_lock:
        if _default is not None:
            _default.transport.close()
        _default = None
