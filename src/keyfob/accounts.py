"""Accounts: log in, log out, what is stored where, and the status table.

One facade over where an account's secrets live (gh's ``AuthConfig``), beside
the broker and using it: the broker answers "a valid token, now"; this module
answers "log this person in or out, what is kept, and how things stand".
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keyfob.broker import Broker, describe_expiry
from keyfob.cache import Entry, Key
from keyfob.clientauth import attach
from keyfob.errors import (
    ConfigError,
    CredentialsMissing,
    InvalidCredentials,
    KeyfobError,
    ProviderError,
    TransportError,
)
from keyfob.flow import Person
from keyfob.provider import PUBLIC_NAMES, Provider, login_flow
from keyfob.provider.base import login_command, plain
from keyfob.secretstore import Credentials, resolve
from keyfob.token import Token

log = logging.getLogger("keyfob")


@dataclass(frozen=True)
class StatusRow:
    provider: str
    account: str
    kind: str
    expires_in: float | None  # seconds; None: no token cached / never expires
    has_token: bool
    state: str
    secrets: Mapping[str, str]  # secret name -> where it is kept


@dataclass(frozen=True)
class LoginPlan:
    """What a login will ask for, before it asks: the command line prompts from this."""

    provider: Provider
    account: str
    flow: str | None
    #: every secret the login uses, and those found nowhere yet
    names: tuple[str, ...]
    missing: tuple[str, ...]
    #: the ones a person may leave empty (a public client's secret)
    optional: frozenset[str]
    #: the names that are not secret (a username, a client id), where found
    known: Mapping[str, str]

    def prompt(self, name: str) -> str:
        """What to call a secret when asking for it, and where the person finds it."""
        p = self.provider
        return p.kind.words(p, name) + (" (Enter for none)" if name in self.optional else "")

    def hidden(self, name: str) -> bool:
        return name not in PUBLIC_NAMES

    def refused(self, exc: InvalidCredentials) -> tuple[str, ...]:
        """The secrets a refused login is about: the ones to ask for again."""
        p = self.provider
        return tuple(n for n in p.kind.refused(p, self.flow, exc) if n in self.names)


@dataclass(frozen=True)
class LoggedOut:
    """What a logout did: ``forgot`` a cached token or a stored secret, ``revoked`` at
    the server; ``exported``: the provider's variables still set, which later runs use."""

    revoked: bool
    forgot: bool
    exported: tuple[str, ...]
    #: why revoking at the server failed (the provider or the network); the token
    #: was forgotten here all the same
    revoke_failed: KeyfobError | None = None


def flow_of(p: Provider, flow: str | None) -> str | None:
    """The login flow, checked against what the provider can do (ConfigError if not)."""
    can = p.kind.flows(p)
    if flow is not None and flow not in can:
        raise ConfigError(
            f"{p.name} cannot log in with --flow {flow}; its flows: {', '.join(can)}",
            hint=f"run `keyfob login {p.name} --flow {can[0]}`, or leave out --flow",
        )
    return login_flow(p, flow)


class Accounts:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    # -- the stored secrets ----------------------------------------------------------

    def set_credentials(self, provider: str, *, account: str | None = None, **secrets: str) -> None:
        p = self.broker.provider(provider)
        unknown = sorted(set(secrets) - set(p.secrets))
        if unknown:
            raise ConfigError(
                f"{p.name} has no secret named {', '.join(unknown)}",
                hint=f"its secrets: {', '.join(p.secrets)}",
            )
        for name, value in secrets.items():
            if value:
                self.broker.store.set(p.service(account or ""), name, value)
        self.broker.forget((p.name, account or ""))

    def get_credentials(self, provider: str, *, account: str | None = None) -> dict[str, str]:
        p = self.broker.provider(provider)
        service = p.service(account or "")
        found = {}
        for name in p.secrets:
            value = self.broker.store.get(service, name)
            if value:
                found[name] = value
        return found

    def _keep(self, p: Provider, key: Key, names: tuple[str, ...], creds: Credentials) -> None:
        """Store what the login was given that the store does not hold yet."""
        store = self.broker.store
        for name in names:
            if name in creds and creds.sources[name] != store.kind:
                store.set(p.service(key[1]), name, creds.values[name])
                if creds.sources[name] != "argument":
                    creds.sources[name] = store.kind  # from now on, found there

    # -- login and logout ------------------------------------------------------------

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
        b = self.broker
        p = b.provider(provider)
        key = (p.name, account or "")
        flow = flow_of(p, flow)
        names = p.kind.login_secrets(p, flow)
        given = {k: v for k, v in credentials.items() if v}
        if p.kind.sign_in is not None:
            assert flow is not None
            return self._login_signed(p, key, flow, names, given, person, timeout)
        if flow in ("browser", "device"):
            return self._login_person(p, key, flow, names, given, person, timeout)
        p = p.kind.for_flow(p, flow)
        creds = resolve(
            names,
            arguments=given,
            environ=b.environ,
            env_names={n: p.env_vars(n) for n in p.secrets},
            store=None,
            service="",
        )
        if names == ("token",) and "token" not in creds:
            raise CredentialsMissing(
                f"{p.name}: no token to paste",
                hint=f"set {p.env_var('token')}, or run `{login_command(p, key[1], 'paste')}` "
                "in a terminal to paste it",
            )
        stored = b.credentials(p, key[1], {}, names) if len(creds.values) < len(names) else None
        for name in names:
            if name not in creds and stored is not None and name in stored:
                creds.add(name, stored.values[name], stored.sources[name])
        if "token" not in names:
            creds.values.pop("token", None)
        with b.flight(key):
            try:
                token = b.obtain(p, key, creds, None, refresh=True)
                check = p.kind.check if names == ("token",) else None
                flow_ = check(b.resolved(p), token) if check is not None else None
                if flow_ is not None:  # a pasted token: is it one at all?
                    b.transport.run(attach(p, flow_))
            except InvalidCredentials as exc:
                raise _refused(p, flow, key[1], exc) from None
            self._keep(p, key, names, creds)
            b.stored_changed()
            b.save(p, key, token, creds)
        return token

    def plan(
        self, provider: str, *, account: str | None = None, flow: str | None = None
    ) -> LoginPlan:
        """What :meth:`login` would use, and what it finds nowhere (to ask a person for)."""
        b = self.broker
        p = b.provider(provider)
        flow = flow_of(p, flow)
        names = p.kind.login_secrets(p, flow)
        found = b.credentials(p, account or "", {}, names)
        return LoginPlan(
            provider=p,
            account=account or "",
            flow=flow,
            names=names,
            missing=tuple(n for n in names if n not in found),
            optional=p.kind.optional(p, flow),
            known={n: v for n, v in found.values.items() if n in PUBLIC_NAMES},
        )

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
        b = self.broker
        kind = p.kind
        if kind.interactive is None:
            raise ConfigError(f"{p.name} has no {flow} login", hint="use --flow password or paste")
        creds = b.credentials(p, key[1], given, names)
        client_id = kind.client[0]
        if client_id not in creds:
            raise CredentialsMissing(
                f"a {flow} login to {p.name} needs {client_id}",
                hint=f"set {p.env_var(client_id)}, or run `{login_command(p, key[1], flow)}` "
                "in a terminal",
            )
        resolved = b.resolved(p)
        if person is None:
            from keyfob.loopback import Terminal

            person = Terminal()
        # The person may take minutes: no lock is held meanwhile, only to save.
        token: Token = b.transport.run(
            attach(
                resolved,
                kind.interactive(resolved, creds, flow, clock=b.clock, timeout=timeout),
            ),
            person,
        )
        identify = kind.identify
        named = b.transport.run(attach(resolved, identify(resolved, token))) if identify else {}
        for name, value in named.items():
            if name not in creds:
                creds.add(name, value, "login")
                names = (*names, name)
        with b.flight(key):
            self._keep(p, key, names, creds)
            if token.refresh_token and "refresh_token" in p.secrets:
                # A lost cache still renews without a person.
                b.store.set(p.service(key[1]), "refresh_token", token.refresh_token)
                creds.add("refresh_token", token.refresh_token, b.store.kind)
            elif token.expires is None and "token" in p.secrets:
                # A token that never expires and cannot be refreshed (a GitHub OAuth
                # app's) is the only secret there is: kept like a pasted one.
                b.store.set(p.service(key[1]), "token", token.access_token)
                creds.add("token", token.access_token, b.store.kind)
            b.stored_changed()
            b.save(p, key, token, creds)
        log.info("%s: logged in (%s)", p.name, describe_expiry(token, b.clock()))
        return token

    def _login_signed(
        self,
        p: Provider,
        key: Key,
        flow: str,
        names: tuple[str, ...],
        given: Mapping[str, Any],
        person: Person | None,
        timeout: float,
    ) -> Token:
        """A login of a kind that signs (OAuth 1.0a): its flow gives the secrets to keep
        (the access token and its secret); they go to the store, nothing to the token
        cache (they do not expire). The token returned is the access token, unexpiring."""
        b = self.broker
        kind = p.kind
        assert kind.sign_in is not None
        creds = b.credentials(p, key[1], given, names)
        optional = kind.optional(p, flow)
        missing = [n for n in names if n not in creds and n not in optional]
        if missing:
            raise CredentialsMissing(
                f"a {flow} login to {p.name} needs {', '.join(missing)}",
                hint=f"set {', '.join(p.env_var(n) for n in missing)}, or run "
                f"`{login_command(p, key[1], flow)}` in a terminal",
            )
        if person is None and flow != "paste":
            from keyfob.loopback import Terminal

            person = Terminal()
        resolved = b.resolved(p)
        flow_ = kind.sign_in(resolved, creds, flow, clock=b.clock, timeout=timeout)
        kept: dict[str, str] = b.transport.run(
            attach(resolved, flow_), person if flow != "paste" else None
        )
        service = p.service(key[1])
        with b.flight(key):
            self._keep(p, key, names, creds)
            for name in p.secrets:
                if name in kept:
                    b.store.set(service, name, kept[name])
                elif name not in names and b.store.get(service, name):
                    b.store.delete(service, name)  # another user's name, from a login before
            b.forget(key)
        log.info("%s: logged in (%s); the access token does not expire", p.name, flow)
        return Token(kept["token"], "OAuth", issued=b.clock())

    def logout(
        self, provider: str, *, account: str | None = None, revoke: bool = False
    ) -> LoggedOut:
        """Forget cached tokens and stored secrets; ``revoke`` at the server first."""
        b = self.broker
        p = b.provider(provider)
        key = (p.name, account or "")
        revoked = False
        entry: Entry | None = b._cached_entry(key)
        stored = self.get_credentials(p.name, account=account)
        failed: KeyfobError | None = None
        if revoke:
            try:
                revoked = self._revoke(p, key, entry)
            except (TransportError, ProviderError) as exc:
                # The person asked to log out: forget here all the same, then say so.
                exc.hint = (
                    "the token is forgotten here; revoke it on the provider's site if it "
                    "must stop working now"
                )
                failed = exc
        b.forget(key)
        service = p.service(key[1])
        from keyfob.rotation import BOOKKEEPING

        for name in (*p.secrets, *(BOOKKEEPING if p.kind.rotates else ())):
            b.store.delete(service, name)
        exported = tuple(v for n in p.secrets for v in p.env_vars(n) if b.environ.get(v))
        return LoggedOut(revoked, entry is not None or bool(stored), exported, failed)

    def _revoke(self, p: Provider, key: Key, entry: Entry | None) -> bool:
        """Revoke the cached token (a signing kind's: the stored access token, which is
        never cached) at the server; whether a revocation was sent."""
        b = self.broker
        if entry is None and p.kind.signer is None:
            return False  # nothing cached to revoke
        creds = b.credentials(p, key[1], {})
        if entry is None and not creds.get("token"):
            return False  # a signing kind with no access token stored
        token = entry.token if entry is not None else Token(creds.values["token"], "OAuth")
        resolved = b.resolved(p)
        flow = p.kind.revoke(resolved, token, creds)
        if flow is None:
            missing = [p.env_var(n) for n in p.kind.client if not creds.get(n)]
            why = (
                f"needs {' and '.join(missing)} to revoke tokens at the server"
                if resolved.revoke_url and missing
                else "cannot revoke tokens at the server"
            )
            b.warn_once(f"{p.name} {why}; forgetting them here only")
            return False
        # A refusal: the server no longer knows the token, as good as revoked.
        with contextlib.suppress(InvalidCredentials):
            b.transport.run(attach(resolved, flow))
        return True

    # -- status ------------------------------------------------------------------

    def status(self, provider: str | None = None) -> list[StatusRow]:
        b = self.broker
        names = [b.provider(provider).name] if provider else sorted(b.providers)
        cached: dict[Key, Entry] = {}
        try:
            cached = {k: e for k, e in b.cache.entries() if k[0] in names}
        except Exception as exc:
            b.warn_once(f"cannot read the token cache ({type(exc).__name__})")
        now = b.clock()
        rows = []
        accounts = {(n, "") for n in names} | set(cached)
        for name, account in sorted(accounts):
            p = b.providers[name]
            entry = cached.get((name, account))
            creds = b.credentials(p, account, {})
            if entry is None and not creds.values:
                continue
            token = entry.token if entry else None
            signed = p.kind.signer is not None and not p.kind.missing(p, creds)
            rows.append(
                StatusRow(
                    provider=name,
                    account=account or (entry.label if entry else "") or p.kind.label(p, creds),
                    kind=_token_kind(token, p.kind.token_kind)
                    if token
                    else (p.kind.protocol if signed else "-"),
                    expires_in=(token.expires - now) if token and token.expires else None,
                    has_token=token is not None or signed,
                    state=token.state(now, p.leeway).value if token else "none",
                    secrets=dict(creds.sources),
                )
            )
        return rows


def _refused(p: Provider, flow: str | None, account: str, exc: InvalidCredentials) -> KeyfobError:
    """A refused login, as a person reads it: what was refused, in the provider's own
    words (its ``error_description``), and the command to try again."""
    names = p.kind.refused(p, flow, exc)
    if not names:
        if not exc.hint:
            exc.hint = f"check the secrets, then run `{login_command(p, account, flow)}`"
        return exc
    what = " or ".join(plain(n) for n in names)
    said = exc.description or exc.error or (f"HTTP {exc.status}" if exc.status else exc.message)
    return InvalidCredentials(
        f"{p.name} refused the {what}: {said}",
        hint=f"check the {' and '.join(plain(n) for n in names)}, then run "
        f"`{login_command(p, account, flow if flow != p.kind.flows(p)[0] else None)}`",
        error=exc.error,
        description=exc.description,
        status=exc.status,
    )


def _token_kind(token: Token, named: str = "") -> str:
    """What the provider calls its tokens ("app-only", "user (OAuth 2.0)"), else what
    the token shows (a JWT, an opaque string); "+ refresh" with a refresh token."""
    from keyfob import _jwt

    kind = named or ("JWT" if _jwt.claims(token.access_token) else "opaque")
    return kind + (" + refresh" if token.refresh_token else "")
