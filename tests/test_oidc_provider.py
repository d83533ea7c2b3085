"""keyfob against a real OpenID/OAuth 2.0 server: npm ``oidc-provider`` 9.13.3 on loopback.

``tests/oidc/provider.mjs`` runs the server (install it with ``bash scripts/setup-oidc.sh``;
without it these tests skip, or fail when ``CI`` is set). Everything goes through the public
interface: ``keyfob.get_token``, the adapters, and the ``keyfob`` command, with the provider
declared in config.toml by its issuer alone. The server's own introspection endpoint says
whether a token is live; its ``/lab/token-requests`` lists what reached its token endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import http.server
import importlib.util
import json
import os
import re
import secrets
import selectors
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests

import keyfob

HERE = Path(__file__).parent
LAB = HERE / "oidc"
CLIENT, SECRET = "lab-client", "lab-secret"
POST_CLIENT, POST_SECRET = "lab-client-post", "lab-secret-post"
PUBLIC_CLIENT = "lab-public"
REDIRECT_URI = "http://127.0.0.1:45678/callback"  # nothing listens: DevUser stops at it


def _load_devuser() -> Any:
    spec = importlib.util.spec_from_file_location("oidc_devuser", LAB / "devuser.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DevUser = _load_devuser().DevUser


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"oidc-provider unavailable: {reason}")
    pytest.skip(f"oidc-provider unavailable: {reason} (run `bash scripts/setup-oidc.sh`)")


def _basic(client_id: str, client_secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()


@dataclass
class Lab:
    """A running provider.mjs, and what a test needs of it besides keyfob."""

    issuer: str
    #: the TLS context to reach an https:// lab with (its CA, a client certificate)
    context: ssl.SSLContext | None = None

    def post(self, path: str, form: dict[str, str], headers: dict[str, str]) -> dict[str, Any]:
        body = urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(self.issuer + path, body, headers)
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.context) as response:
                data = response.read()
        except urllib.error.HTTPError as exc:
            data = exc.read()
        return json.loads(data) if data else {}

    def introspect(self, token: str) -> dict[str, Any]:
        return self.post(
            "/token/introspection", {"token": token}, {"Authorization": _basic(CLIENT, SECRET)}
        )

    def revoke(self, token: str) -> None:
        form = {"token": token, "token_type_hint": "access_token"}
        self.post("/token/revocation", form, {"Authorization": _basic(CLIENT, SECRET)})

    def token_requests(self) -> list[dict[str, Any]]:
        return self._get("/lab/token-requests")

    def revocations(self) -> list[dict[str, Any]]:
        return self._get("/lab/revocations")

    def _get(self, path: str) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self.issuer + path, timeout=10, context=self.context) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]

    def authorization_code(
        self, client_id: str, client_secret: str | None, extra: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Log in as alice and consent (DevUser), then exchange the code, PKCE S256;
        ``extra`` goes into the token request (a client assertion)."""
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        state = secrets.token_urlsafe(8)
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": REDIRECT_URI,
                "state": state,
                "scope": "openid offline_access",
                "prompt": "consent",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        user = DevUser(context=self.context)
        callback = user.authorize(f"{self.issuer}/auth?{query}", stop_at=REDIRECT_URI)
        answer = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))
        assert answer["state"] == state, answer
        form = {
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        }
        headers = {}
        if client_secret:
            headers["Authorization"] = _basic(client_id, client_secret)
        else:
            form["client_id"] = client_id
        form.update(extra or {})
        tokens = self.post("/token", form, headers)
        assert "refresh_token" in tokens, tokens
        return tokens


@contextlib.contextmanager
def running_provider(tmp: Path, **env: str) -> Iterator[tuple[Lab, subprocess.Popen[str]]]:
    """``node tests/oidc/provider.mjs`` on 127.0.0.1, any free port; stopped by its PID."""
    node = shutil.which("node")
    if node is None:
        _unavailable("node is not installed")
    if not (LAB / "node_modules" / "oidc-provider").is_dir():
        _unavailable("tests/oidc/node_modules is missing")
    assert node is not None
    log = tmp / "provider.log"
    # Device logins poll once a second, as the server asks, not every 5 s.
    environ = {**os.environ, "PORT": "0", "HOST": "127.0.0.1", "DEVICE_INTERVAL": "1", **env}
    environ.pop("ISSUER_HOST", None)
    with open(log, "w") as stderr:
        proc = subprocess.Popen(
            [node, str(LAB / "provider.mjs")],
            cwd=LAB,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        issuer = _read_issuer(proc, log)
        yield Lab(issuer), proc
    finally:
        stop(proc)


def _read_issuer(proc: subprocess.Popen[str], log: Path) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=deadline - time.monotonic()):
                line = proc.stdout.readline()
                if not line:
                    break  # node exited
                found = re.search(r"\bhttps?://127\.0\.0\.1:\d+\b", line)
                if found:
                    return found.group(0)
    stop(proc)
    _unavailable(f"node provider.mjs did not start: {log.read_text()[-500:]!r}")
    raise AssertionError("unreachable")


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_provider(tmp_path_factory.mktemp("oidc")) as (server, _):
        yield server


@pytest.fixture(scope="module")
def short_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A second instance whose client-credentials tokens live 3 seconds."""
    tmp = tmp_path_factory.mktemp("oidc-short")
    with running_provider(tmp, CLIENT_CREDENTIALS_TTL="3") as (server, _):
        yield server


class Seen:
    """Tokens the test saw issued: they may be on the stdout of ``keyfob token``, nowhere else."""

    def __init__(self) -> None:
        self.tokens: set[str] = set()

    def add(self, *tokens: str | None) -> None:
        self.tokens.update(t for t in tokens if t)

    def issued(self) -> set[str]:
        return set(self.tokens)


@pytest.fixture
def seen(no_secret_leaks: Any) -> Seen:
    tokens = Seen()
    no_secret_leaks.providers.append(tokens)  # searched like a LocalProvider's tokens
    no_secret_leaks.plant(SECRET, POST_SECRET)
    return tokens


def configure(home: Path, **providers: dict[str, Any]) -> None:
    """config.toml with these [providers.NAME] tables, and short timeouts, no retries."""
    lines = ["[http]", "timeout = 5", "connect_timeout = 2", "retries = 0", ""]
    for name, table in providers.items():
        lines.append(f"[providers.{name}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in table.items())
        lines.append("")
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("\n".join(lines))
    keyfob.wiring.reset()


def provider_table(issuer: str, **more: Any) -> dict[str, Any]:
    return {"issuer": issuer, "grant": "client_credentials", "env_prefix": "OIDC", **more}


@pytest.fixture
def oidc(home: Path, lab: Lab, seen: Seen, monkeypatch: pytest.MonkeyPatch) -> Lab:
    """[providers.oidc] by issuer alone, client credentials, scope api:read; lab-client's secrets
    in OIDC_CLIENT_ID / OIDC_CLIENT_SECRET."""
    configure(home, oidc=provider_table(lab.issuer, scope="api:read"))
    monkeypatch.setenv("OIDC_CLIENT_ID", CLIENT)
    monkeypatch.setenv("OIDC_CLIENT_SECRET", SECRET)
    return lab


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert lines[0].startswith("keyfob: error: ")
    assert done.stdout == ""
    return lines[0]


# -- discovery and the client credentials grant ------------------------------------------------


def test_discovery_from_the_issuer_alone_finds_token_revocation_and_introspection(
    oidc: Lab,
) -> None:
    (p,) = [p for p in keyfob.providers() if p.name == "oidc"]
    assert (p.issuer, p.token_url, p.revoke_url, p.introspect_url) == (
        oidc.issuer,
        None,
        None,
        None,
    )
    resolve = p.kind.resolve
    assert resolve is not None
    found = keyfob.wiring.default().transport.run(resolve(p))
    assert (found.token_url, found.revoke_url, found.introspect_url) == (
        f"{oidc.issuer}/token",
        f"{oidc.issuer}/token/revocation",
        f"{oidc.issuer}/token/introspection",
    )


def test_a_discovery_document_of_another_issuer_is_refused_naming_both(
    home: Path, oidc: Lab, cli: Any
) -> None:
    # the same server by another name: its document names the issuer it was made with
    other = oidc.issuer.replace("127.0.0.1", "localhost")
    assert other != oidc.issuer
    configure(home, oidc=provider_table(other, scope="api:read"))
    before = len(oidc.token_requests())

    done = cli("token", "oidc")

    assert done.returncode == 4, done.stderr
    line = one_line_error(done)
    assert f"names the issuer '{oidc.issuer}', not the configured {other}" in line
    assert "set issuer in config.toml" in line
    assert len(oidc.token_requests()) == before  # the client secret went nowhere


def test_client_credentials_with_client_secret_basic(oidc: Lab, seen: Seen) -> None:
    token = keyfob.get_token("oidc")
    seen.add(token.access_token)
    assert token.scope == "api:read"
    assert oidc.token_requests()[-1] == {
        "grant_type": "client_credentials",
        "client_id": CLIENT,
        "client_auth": "basic",
        "status": 200,
    }
    info = oidc.introspect(token.access_token)
    assert (info["active"], info["client_id"], info["scope"]) == (True, CLIENT, "api:read")


def test_client_credentials_with_client_secret_post(
    home: Path, oidc: Lab, seen: Seen, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(
        home, oidc=provider_table(oidc.issuer, scope="api:read", client_auth="client_secret_post")
    )
    monkeypatch.setenv("OIDC_CLIENT_ID", POST_CLIENT)
    monkeypatch.setenv("OIDC_CLIENT_SECRET", POST_SECRET)
    token = keyfob.get_token("oidc")
    seen.add(token.access_token)
    assert token.scope == "api:read"
    assert oidc.token_requests()[-1] == {
        "grant_type": "client_credentials",
        "client_id": POST_CLIENT,
        "client_auth": "post",
        "status": 200,
    }
    info = oidc.introspect(token.access_token)
    assert (info["active"], info["client_id"]) == (True, POST_CLIENT)


# -- the cache -----------------------------------------------------------------------------------


def test_second_process_reuses_cached_token(oidc: Lab, seen: Seen, cli: Any) -> None:
    before = len(oidc.token_requests())
    first = cli("token", "oidc")
    seen.add(first.stdout.strip())
    second = cli("token", "oidc")
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert second.stdout == first.stdout
    assert len(oidc.token_requests()) == before + 1


def test_new_token_once_expires_in_minus_leeway_has_passed(
    home: Path, short_lab: Lab, seen: Seen, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(home, x=provider_table(short_lab.issuer, leeway=1))
    monkeypatch.setenv("OIDC_CLIENT_ID", CLIENT)
    monkeypatch.setenv("OIDC_CLIENT_SECRET", SECRET)
    first = keyfob.get_token("x")
    seen.add(first.access_token)
    assert keyfob.get_token("x").access_token == first.access_token  # fresh for 3 - 1 s
    time.sleep(2.5)
    later = keyfob.get_token("x")
    seen.add(later.access_token)
    assert later.access_token != first.access_token
    assert short_lab.introspect(later.access_token)["active"] is True


# -- refresh tokens ------------------------------------------------------------------------------


def test_refresh_token_is_used_before_the_grant(
    home: Path, oidc: Lab, seen: Seen, cli: Any, no_secret_leaks: Any
) -> None:
    tokens = oidc.authorization_code(CLIENT, SECRET)
    no_secret_leaks.plant(tokens["refresh_token"])
    seen.add(tokens["access_token"])
    configure(home, oidc=provider_table(oidc.issuer))  # grant = "client_credentials"
    before = len(oidc.token_requests())
    done = cli("token", "oidc", env={"OIDC_REFRESH_TOKEN": tokens["refresh_token"]})
    assert done.returncode == 0, done.stderr
    access_token = done.stdout.strip()
    seen.add(access_token)
    assert access_token != tokens["access_token"]
    assert [r["grant_type"] for r in oidc.token_requests()[before:]] == ["refresh_token"]
    info = oidc.introspect(access_token)
    assert (info["active"], info["sub"], info["client_id"]) == (True, "alice", CLIENT)


@pytest.fixture
def public(
    home: Path, lab: Lab, seen: Seen, no_secret_leaks: Any, monkeypatch: pytest.MonkeyPatch
) -> str:
    """[providers.pub]: lab-public, a public client whose refresh tokens rotate; its first
    refresh token, from the authorization code flow, in PUB_REFRESH_TOKEN. Returns that token."""
    tokens = lab.authorization_code(PUBLIC_CLIENT, None)
    no_secret_leaks.plant(tokens["refresh_token"])
    seen.add(tokens["access_token"])
    configure(
        home,
        pub={
            "issuer": lab.issuer,
            "grant": "refresh_token",
            "client_auth": "none",
            "env_prefix": "PUB",
        },
    )
    monkeypatch.setenv("PUB_CLIENT_ID", PUBLIC_CLIENT)
    monkeypatch.setenv("PUB_REFRESH_TOKEN", tokens["refresh_token"])
    return str(tokens["refresh_token"])


def test_rotated_refresh_token_is_used_for_the_next_refresh(
    lab: Lab, public: str, seen: Seen, no_secret_leaks: Any
) -> None:
    first = keyfob.get_token("pub")
    no_secret_leaks.plant(first.refresh_token or "")
    seen.add(first.access_token)
    assert first.refresh_token not in (None, public)  # the server rotated it
    again = keyfob.get_token("pub", refresh=True)  # the first refresh token is spent
    no_secret_leaks.plant(again.refresh_token or "")
    seen.add(again.access_token)
    assert again.refresh_token not in (None, public, first.refresh_token)
    info = lab.introspect(again.access_token)
    assert (info["active"], info["sub"], info["client_id"]) == (True, "alice", PUBLIC_CLIENT)


def test_rotated_refresh_token_is_saved_for_the_next_process(
    lab: Lab, public: str, seen: Seen, cli: Any, no_secret_leaks: Any
) -> None:
    first = keyfob.get_token("pub")
    no_secret_leaks.plant(first.refresh_token or "")
    seen.add(first.access_token)
    before = len(lab.token_requests())
    done = cli("token", "pub", "--refresh")
    assert done.returncode == 0, done.stderr
    access_token = done.stdout.strip()
    seen.add(access_token)
    assert lab.token_requests()[before:] == [
        {"grant_type": "refresh_token", "client_id": PUBLIC_CLIENT, "client_auth": "none"}
        | {"status": 200}
    ]
    assert lab.introspect(access_token)["active"] is True


# -- failures ------------------------------------------------------------------------------------


def test_wrong_client_secret_exits_3_with_one_line(
    oidc: Lab, cli: Any, no_secret_leaks: Any
) -> None:
    no_secret_leaks.plant("wrong-secret")
    done = cli("token", "oidc", env={"OIDC_CLIENT_SECRET": "wrong-secret"})
    assert done.returncode == 3, done.stderr
    assert "invalid_client" in one_line_error(done)


def test_unreachable_server_exits_4_with_one_line(home: Path, oidc: Lab, cli: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends
    configure(home, oidc=provider_table(f"http://127.0.0.1:{port}"))
    done = cli("token", "oidc")
    assert done.returncode == 4, done.stderr
    assert "cannot reach" in one_line_error(done)


def test_cached_token_is_served_while_the_server_is_down(
    home: Path, tmp_path: Path, seen: Seen, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_provider(tmp_path) as (server, proc):
        configure(home, oidc=provider_table(server.issuer))
        monkeypatch.setenv("OIDC_CLIENT_ID", CLIENT)
        monkeypatch.setenv("OIDC_CLIENT_SECRET", SECRET)
        first = cli("token", "oidc")
        assert first.returncode == 0, first.stderr
        seen.add(first.stdout.strip())
        stop(proc)
        with pytest.raises(urllib.error.URLError):
            server.token_requests()  # it is down
        again = cli("token", "oidc")
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout


def test_logout_revoke_makes_the_server_forget_the_token(oidc: Lab, seen: Seen, cli: Any) -> None:
    got = cli("token", "oidc")
    assert got.returncode == 0, got.stderr
    access_token = got.stdout.strip()
    seen.add(access_token)
    assert oidc.introspect(access_token)["active"] is True
    done = cli("logout", "oidc", "--revoke")
    assert done.returncode == 0, done.stderr
    assert "revoked" in done.stderr
    assert oidc.introspect(access_token) == {"active": False}


# -- the adapters against an API that asks the provider -------------------------------------------


@dataclass
class Api:
    """A loopback API that checks each bearer token by introspection: 200 or 401."""

    url: str
    tokens: list[str] = field(default_factory=list)  # the bearer token of each request


@pytest.fixture
def api(lab: Lab) -> Iterator[Api]:
    api = Api("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            authorization = self.headers.get("Authorization", "")
            token = authorization.removeprefix("Bearer ")
            api.tokens.append(token)
            active = bool(token) and lab.introspect(token).get("active") is True
            body = json.dumps({"active": active}).encode()
            self.send_response(200 if active else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}/me"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield api
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def via_requests_auth(url: str) -> int:
    return requests.get(url, auth=keyfob.requests_auth("oidc"), timeout=10).status_code


def via_httpx_client(url: str) -> int:
    with httpx.Client(auth=keyfob.httpx_auth("oidc"), timeout=10) as client:
        return client.get(url).status_code


def via_httpx_async_client(url: str) -> int:
    async def call() -> int:
        async with httpx.AsyncClient(auth=keyfob.httpx_auth("oidc"), timeout=10) as client:
            return (await client.get(url)).status_code

    return asyncio.run(call())


ADAPTERS: dict[str, Callable[[str], int]] = {
    "requests_auth": via_requests_auth,
    "httpx_client": via_httpx_client,
    "httpx_async_client": via_httpx_async_client,
}


@pytest.mark.parametrize("call", ADAPTERS.values(), ids=ADAPTERS.keys())
def test_adapter_gets_one_new_token_after_the_server_revokes_it(
    oidc: Lab, api: Api, seen: Seen, call: Callable[[str], int]
) -> None:
    assert call(api.url) == 200
    (old,) = api.tokens
    seen.add(old)
    oidc.revoke(old)  # behind keyfob's back
    before = len(oidc.token_requests())
    assert call(api.url) == 200
    seen.add(*api.tokens)
    assert api.tokens[1] == old
    assert api.tokens[2] != old
    assert len(api.tokens) == 3
    assert oidc.token_requests()[before:] == [
        {"grant_type": "client_credentials", "client_id": CLIENT, "client_auth": "basic"}
        | {"status": 200}
    ]
