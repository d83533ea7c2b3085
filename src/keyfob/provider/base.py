"""What a provider is: its data (:class:`Provider`) and its behaviour (:class:`Kind`).

A provider is a frozen dataclass of endpoints, grant, secret names and
environment variables; its ``kind`` is the typed object that makes it work,
exported by one module under ``keyfob.provider`` (``oauth2``, ``inaturalist``,
``treesnap``, ``twitter``). A built-in provider and one declared in
config.toml are the same type; nothing outside this package asks which kind a
provider is, it asks the kind.

Quirks are named hooks on a shared flow (authlib's compliance hooks), not
copies of the flow: see :class:`Hooks`.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from keyfob.clientauth import ClientCert, SigningKey
    from keyfob.errors import KeyfobError
    from keyfob.flow import Flow, HttpResponse
    from keyfob.secretstore import Credentials
    from keyfob.token import Token

#: the ways `keyfob login --flow` can get a first token, and what each one is
FLOW_WORDS = {
    "password": "your username and password, with the app's id and secret",
    "client": "the app's own id and secret (client credentials)",
    "paste": "a token you copied from the provider's site",
    "browser": "you log in in a browser (authorization code + PKCE)",
    "device": "you enter a code on any other device (RFC 8628)",
    "pin": "you allow access in a browser anywhere and type the PIN it shows (OAuth 1.0a)",
}
FLOWS = tuple(FLOW_WORDS)
#: secrets that are not secret: shown in prompts as plain input, usable as identity
PUBLIC_NAMES = frozenset({"username", "client_id", "app_id", "api_key"})


@dataclass(frozen=True)
class Provider:
    """A provider's data. ``kind`` does the work; everything else is what config may set."""

    name: str
    kind: Kind
    grant: str = "client_credentials"
    description: str = ""
    token_url: str | None = None
    authorize_url: str | None = None
    device_url: str | None = None
    revoke_url: str | None = None
    introspect_url: str | None = None
    jwt_url: str | None = None
    refresh_url: str | None = None
    api_url: str | None = None
    #: OAuth 1.0a (RFC 5849): the temporary-credentials and token endpoints, how it signs
    request_token_url: str | None = None
    access_token_url: str | None = None
    signature_method: str = "HMAC-SHA1"
    signature_type: str = "header"
    #: the path of the RSA private key file, for RSA-SHA1
    rsa_key: str | None = None
    issuer: str | None = None
    client_auth: str = "client_secret_basic"
    scope: str | None = None
    env_prefix: str = ""
    redirect_uri: str | None = None
    leeway: float = 60.0
    #: static rate limits, ``"N/UNIT"`` (see keyfob.ratelimit); learned ones come from answers
    rate_limits: tuple[str, ...] = ()
    #: every secret the provider may use, in prompt order, and the ones its grant needs
    secrets: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    #: the secrets that name whose token it is (never a secret value itself)
    identity: tuple[str, ...] = ()
    #: secret name -> environment variable
    env: Mapping[str, str] = field(default_factory=dict)
    #: secret name -> further variables read, in order, where the first is unset
    #: (gh reads GH_TOKEN, then GITHUB_TOKEN)
    env_also: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: keyring service of the default account (iNaturalist shares pyinaturalist's)
    keyring_service: str = ""
    builtin: bool = False
    #: the client certificate of its requests (mutual TLS), from its table or [http]
    client_cert: ClientCert | None = None
    #: the key a ``private_key_jwt`` client signs its assertions with
    signing_key: SigningKey | None = None

    def service(self, account: str = "") -> str:
        if account:
            return f"keyfob:{self.name}:{account}"
        return self.keyring_service or f"keyfob:{self.name}"

    def env_var(self, name: str) -> str:
        return self.env.get(name) or f"{self.env_prefix}_{name.upper()}"

    def env_vars(self, name: str) -> tuple[str, ...]:
        """Every variable that may hold ``name``, the first set one wins."""
        return (self.env_var(name), *self.env_also.get(name, ()))

    @property
    def endpoint(self) -> str:
        """Where its tokens come from: a token of another server is not its own."""
        return self.token_url or self.issuer or self.refresh_url or self.access_token_url or ""

    @property
    def identity_env(self) -> str:
        return ",".join(f"{name}={'|'.join(self.env_vars(name))}" for name in self.identity)

    @property
    def site(self) -> str:
        """The provider's web site as its endpoints name it (``https://host``), or ""."""
        for url in (
            self.issuer,
            self.authorize_url,
            self.token_url,
            self.refresh_url,
            self.request_token_url,
        ):
            if url:
                parts = urlsplit(url)
                return f"{parts.scheme}://{parts.netloc}"
        return ""


# -- the signatures a kind provides -------------------------------------------------


class Acquire(Protocol):
    """A flow to a new token from the secrets alone (the provider's grant)."""

    def __call__(self, p: Provider, creds: Credentials, now: float) -> Flow[Token]: ...


class Renew(Protocol):
    """A flow to a new token from the cached one (its refresh token), or None."""

    def __call__(
        self, p: Provider, token: Token, creds: Credentials, now: float
    ) -> Flow[Token] | None: ...


class Revoke(Protocol):
    """A flow that revokes ``token`` at the server, or None where it cannot."""

    def __call__(self, p: Provider, token: Token, creds: Credentials) -> Flow[None] | None: ...


class Resolve(Protocol):
    """A flow to the provider with its endpoints discovered, or None: nothing to find."""

    def __call__(self, p: Provider) -> Flow[Provider] | None: ...


class Check(Protocol):
    """A flow that asks the provider whether a pasted token is good (InvalidCredentials
    when not), or None where the provider has no cheap documented way to tell."""

    def __call__(self, p: Provider, token: Token) -> Flow[None] | None: ...


class Interactive(Protocol):
    """A login that needs a person (``browser``, ``device``)."""

    def __call__(
        self,
        p: Provider,
        creds: Credentials,
        flow: str,
        *,
        clock: Callable[[], float],
        timeout: float,
    ) -> Flow[Token]: ...


class Signer(Protocol):
    """Signs each request for one user (OAuth 1.0a), where a bearer token is not enough."""

    #: whose requests these are, for the rate budget (never a secret)
    who: str

    def sign(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[str, dict[str, str], bytes | None]: ...

    def header(self, method: str, url: str, form: Mapping[str, str] | None = None) -> str: ...


class SignIn(Protocol):
    """A login of a signing kind (``pin``, ``browser``, ``paste``): a flow to the secrets
    to keep (the access token and its secret, and names such as ``user_id``)."""

    def __call__(
        self,
        p: Provider,
        creds: Credentials,
        flow: str,
        *,
        clock: Callable[[], float],
        timeout: float,
    ) -> Flow[dict[str, str]]: ...


@dataclass(frozen=True)
class Hooks:
    """Named points where a provider bends a shared OAuth2 flow (authlib's
    ``register_compliance_hook``), instead of rewriting the flow."""

    #: an error answer in the provider's own shape (Twitter's ``{"errors": [...]}``),
    #: as a keyfob error; None: read it as an OAuth error (RFC 6749 §5.2)
    refusal: Callable[[HttpResponse, tuple[str, ...]], KeyfobError | None] | None = None
    #: the token as the provider really means it (Twitter: it never expires)
    token: Callable[[Token], Token] | None = None
    #: a further step after the token answer (iNaturalist: trade it for a JWT)
    then: Callable[[Provider, Token, float], Flow[Token]] | None = None


def no_label(p: Provider, creds: Credentials) -> str:
    return ""


def login_command(p: Provider, account: str | None = "", flow: str | None = None) -> str:
    """The command that logs in again, keeping the account asked for."""
    return (
        f"keyfob login {p.name}"
        + (f" --account {shlex.quote(account)}" if account else "")
        + (f" --flow {flow}" if flow else "")
    )


def plain(name: str) -> str:
    """A secret's name as a person says it: ``app_id`` -> "app ID"."""
    spelled = {"id": "ID", "api": "API"}
    return " ".join(spelled.get(word, word) for word in name.split("_"))


#: what a login prompt says of a secret, where its provider says nothing of its own
WORDS = {
    "client_id": "{name} client ID (from the app you registered at {site})",
    "client_secret": "{name} client secret (given with the client ID)",
    "username": "{name} username",
    "password": "{name} password",
    "refresh_token": "{name} refresh token",
    "token": "{name} access token (copied from {site})",
}


def words(p: Provider, name: str) -> str:
    """The prompt for a secret: what it is, and where to find it."""
    text = WORDS.get(name, "{name} " + plain(name))
    return text.format(name=p.name, site=p.site or "the provider").replace(" (copied from )", "")


def same_provider(p: Provider, flow: str | None) -> Provider:
    return p


def refused_secrets(p: Provider, flow: str | None, exc: KeyfobError) -> tuple[str, ...]:
    """The secrets a refusal of a login's first token is about, to ask for again: the
    client's when the server says so (``invalid_client``) or the login used only the
    client, the token when pasted, the username and password after the password grant."""
    grant = {"password": "password", "client": "client_credentials", "paste": "paste"}.get(
        flow or "", p.grant
    )
    if flow in ("browser", "device"):
        return ()
    if exc.error == "invalid_client" or grant == "client_credentials":
        return p.kind.client
    if grant == "paste":
        return ("token",)
    if grant == "password" and (exc.error == "invalid_grant" or exc.status in (400, 401)):
        return ("username", "password")
    return ()


def missing_required(p: Provider, creds: Credentials) -> tuple[str, ...]:
    return tuple(n for n in p.required if n not in creds)


def no_optional(p: Provider, flow: str | None) -> frozenset[str]:
    return frozenset()


def interactive_optional(p: Provider, flow: str | None) -> frozenset[str]:
    """The logins that need a person may be made by a public client, without a secret."""
    return frozenset({p.kind.client[1]}) if flow in ("browser", "device") else frozenset()


def own_secrets(p: Provider, flow: str | None) -> tuple[str, ...]:
    """What a login asks for where the provider names its own secrets: a pasted
    token (also where pasting is the provider's grant: TreeSnap), the client for a
    login with a person, else every secret but the token."""
    if flow == "paste" or (flow is None and p.grant == "paste"):
        return ("token",)
    if flow in ("browser", "device"):
        return p.kind.client
    return tuple(n for n in p.secrets if n != "token")


def env(prefix: str, names: tuple[str, ...]) -> dict[str, str]:
    """Secret name -> ``PREFIX_NAME``."""
    return {name: f"{prefix}_{name.upper()}" for name in names}


#: the login flow a grant's tokens come from, where it is not the grant itself
INTERACTIVE_GRANTS = {"authorization_code": "browser", "device_code": "device"}


def login_flow(p: Provider, flow: str | None) -> str | None:
    """The flow a login takes: the one asked for, else the one the grant needs (a
    signing kind's first flow: it has no grant)."""
    if flow is None and p.kind.sign_in is not None:
        return p.kind.flows(p)[0]
    return flow or INTERACTIVE_GRANTS.get(p.grant)


@dataclass(frozen=True, eq=False)
class Kind:
    """The behaviour of one kind of provider; each provider module exports one.

    ``flows`` are the login flows it can do, the first the default; ``login_secrets``
    what a login flow asks for; ``missing`` which secrets its grant still needs
    (some stand in for others: a pasted token, a refresh token); ``optional``
    the ones a login may leave empty (a public client has no secret); ``words``
    what a prompt calls a secret and where the person finds it; ``for_flow`` the
    provider as a login flow uses it (another grant); ``refused`` which secrets a
    refused login is about; ``check`` whether a pasted token is good.
    """

    name: str
    acquire: Acquire
    renew: Renew
    revoke: Revoke
    flows: Callable[[Provider], tuple[str, ...]]
    login_secrets: Callable[[Provider, str | None], tuple[str, ...]]
    missing: Callable[[Provider, Credentials], tuple[str, ...]] = missing_required
    optional: Callable[[Provider, str | None], frozenset[str]] = no_optional
    resolve: Resolve | None = None
    label: Callable[[Provider, Credentials], str] = no_label
    interactive: Interactive | None = None
    #: a flow to the identity names a token tells, asking the provider where the token
    #: itself does not say (after a browser login, where no username was typed)
    identify: Callable[[Provider, Token], Flow[dict[str, str]]] | None = None
    #: the stored secret a renewed token replaces (TreeSnap's personal token)
    supersedes: str | None = None
    #: the secret names of the client (app): its id, and its secret
    client: tuple[str, str] = ("client_id", "client_secret")
    #: secrets the grant uses only in place of missing required ones (iNaturalist's
    #: pasted JWT): with every required secret given directly, the store is not asked
    stand_ins: frozenset[str] = frozenset()
    hooks: Hooks = field(default_factory=Hooks)
    words: Callable[[Provider, str], str] = words
    for_flow: Callable[[Provider, str | None], Provider] = same_provider
    refused: Callable[[Provider, str | None, KeyfobError], tuple[str, ...]] = refused_secrets
    check: Check | None = None
    #: a kind that signs every request (OAuth 1.0a) instead of giving a bearer token:
    #: its signer from the secrets, and its logins (a flow to the secrets to keep)
    signer: Callable[[Provider, Credentials], Signer] | None = None
    sign_in: SignIn | None = None
    #: what `status` and `providers` call its tokens
    protocol: str = "OAuth 2.0"
    #: the server rotates refresh tokens (X, GitHub apps): each renewal's refresh token
    #: supersedes the one sent, wherever that came from; the broker keeps it in the
    #: secret store before the new token is used (see :mod:`keyfob.rotation`)
    rotates: bool = False
    #: what ``keyfob status`` calls the provider's tokens ("app-only", "user (OAuth
    #: 2.0)"); empty: what the token itself shows (a JWT, an opaque string)
    token_kind: str = ""

    def __repr__(self) -> str:
        return f"<Kind {self.name}>"
