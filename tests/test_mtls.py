"""Client certificates and client authentication without a secret, against real parts.

oidc-provider (``tests/oidc/provider.mjs``) served over https by node's TLS server,
with a private CA, a server certificate and client certificates the tests make
(trustme): ``tls_lab`` asks every client for a certificate and knows a
``private_key_jwt`` client (its public keys inline, made here) and a
``tls_client_auth`` client (registered by a DNS name of its certificate);
``strict_lab`` ends the TLS handshake of a client without a certificate of the
CA. The server's ``/lab/token-requests`` says how each client authenticated.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keyfob
from keyfob import clientauth, wiring
from keyfob.clientauth import ClientCert, SigningKey
from keyfob.config import HttpSettings
from keyfob.errors import ConfigError, InvalidCredentials, TransportError
from keyfob.flow import HttpRequest, HttpResponse, ShowCode
from keyfob.provider import oauth2
from keyfob.provider.base import Provider
from keyfob.secretstore import Credentials
from test_oidc_provider import (
    CLIENT,
    SECRET,
    DevUser,
    Lab,
    Seen,
    one_line_error,
    running_provider,
)

PKJWT_CLIENT = "lab-pkjwt"
MTLS_CLIENT = "lab-mtls"
MTLS_NAME = "lab-mtls.keyfob.test"
PASSPHRASE = "Passphrase-of-the-lab-key-31337"
KEYS = {"rsa": "rsa-1", "ec": "ec-1", "ed": "ed-1"}


# -- the private CA, the certificates and the keys --------------------------------------------


@dataclass
class Pki:
    folder: Path
    ca: Path
    client_cert: Path
    client_key: Path
    other_cert: Path  # same CA, another subject
    other_key: Path
    keys: dict[str, Path]  # signing keys by kind (rsa, ec, ed), registered at the lab
    stranger: Path  # an RSA key the lab does not know
    key_lines: list[str]  # lines of every private key's PEM body: planted as secrets

    def context(self, *, cert: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        if cert:
            context.load_cert_chain(str(self.client_cert), str(self.client_key))
        return context


def _private(path: Path, pem: bytes) -> Path:
    path.write_bytes(pem)
    path.chmod(0o600)
    return path


def _pem(key: Any, password: str | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _body_lines(pem: bytes) -> list[str]:
    return [line for line in pem.decode().splitlines()[1:-1] if len(line) > 20]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    server = ca.issue_cert("127.0.0.1")
    server.cert_chain_pems[0].write_to_path(str(folder / "server.pem"))
    _private(folder / "server.key", server.private_key_pem.bytes())
    lines: list[str] = []
    paths = {}
    for name, dns in (("client", MTLS_NAME), ("other", "someone-else.keyfob.test")):
        issued = ca.issue_cert(dns)
        issued.cert_chain_pems[0].write_to_path(str(folder / f"{name}.pem"))
        paths[name] = _private(folder / f"{name}.key", issued.private_key_pem.bytes())
        lines += _body_lines(issued.private_key_pem.bytes())
    made = {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec": ec.generate_private_key(ec.SECP256R1()),
        "ed": ed25519.Ed25519PrivateKey.generate(),
    }
    keys = {}
    for kind, key in made.items():
        keys[kind] = _private(folder / f"{kind}.key", _pem(key))
        lines += _body_lines(_pem(key))
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    lines += _body_lines(_pem(stranger))
    public = {
        "rsa": jwt.algorithms.RSAAlgorithm.to_jwk(made["rsa"].public_key(), as_dict=True),
        "ec": jwt.algorithms.ECAlgorithm.to_jwk(made["ec"].public_key(), as_dict=True),
        "ed": jwt.algorithms.OKPAlgorithm.to_jwk(made["ed"].public_key(), as_dict=True),
    }
    clients = [
        {
            "client_id": PKJWT_CLIENT,
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [{**public[k], "kid": KEYS[k], "use": "sig"} for k in KEYS]},
            "application_type": "native",
            "grant_types": [
                "client_credentials",
                "authorization_code",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:device_code",
            ],
            "response_types": ["code"],
            "redirect_uris": ["http://127.0.0.1/callback"],
        },
        {
            "client_id": MTLS_CLIENT,
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_san_dns": MTLS_NAME,
            "grant_types": ["client_credentials"],
            "response_types": [],
            "redirect_uris": [],
        },
    ]
    (folder / "clients.json").write_text(json.dumps(clients))
    return Pki(
        folder,
        folder / "ca.pem",
        folder / "client.pem",
        paths["client"],
        folder / "other.pem",
        paths["other"],
        keys,
        _private(folder / "stranger.key", _pem(stranger)),
        lines,
    )


def _serve(tmp: Path, pki: Pki, **env: str) -> Any:
    return running_provider(
        tmp,
        TLS_CERT=str(pki.folder / "server.pem"),
        TLS_KEY=str(pki.folder / "server.key"),
        TLS_CA=str(pki.ca),
        LAB_CLIENTS=str(pki.folder / "clients.json"),
        **env,
    )


@pytest.fixture(scope="module")
def tls_lab(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Lab]:
    """https; a client certificate is asked for, not required."""
    with _serve(tmp_path_factory.mktemp("tls-lab"), pki) as (server, _):
        yield Lab(server.issuer, context=pki.context())


@pytest.fixture(scope="module")
def strict_lab(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Lab]:
    """https; the TLS handshake ends without a client certificate of the lab's CA."""
    with _serve(tmp_path_factory.mktemp("strict-lab"), pki, REQUIRE_CLIENT_CERT="1") as (
        server,
        _,
    ):
        yield Lab(server.issuer, context=pki.context(cert=True))


@pytest.fixture
def planted(no_secret_leaks: Any, pki: Pki) -> Seen:
    """Every private key's PEM lines, the passphrase and the client secret are secrets,
    and so is every token the test saw issued: searched for in every output, log
    record and error of the test."""
    tokens = Seen()
    no_secret_leaks.providers.append(tokens)
    no_secret_leaks.plant(*pki.key_lines, PASSPHRASE, SECRET)
    return tokens


def configure(home: Path, http: dict[str, Any] | None = None, **providers: dict[str, Any]) -> None:
    lines = ["[http]", "timeout = 5", "connect_timeout = 2", "retries = 0"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in (http or {}).items()]
    for name, table in providers.items():
        lines += ["", f"[providers.{name}]"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("\n".join(lines) + "\n")
    wiring.reset()


def pkjwt_table(lab: Lab, pki: Pki, kind: str = "rsa", **more: Any) -> dict[str, Any]:
    return {
        "issuer": lab.issuer,
        "grant": "client_credentials",
        "env_prefix": "PK",
        "client_auth": "private_key_jwt",
        "private_key": str(pki.keys[kind]),
        "key_id": KEYS[kind],
        **more,
    }


def mtls_table(lab: Lab, pki: Pki, **more: Any) -> dict[str, Any]:
    return {
        "issuer": lab.issuer,
        "grant": "client_credentials",
        "env_prefix": "MT",
        "client_auth": "tls_client_auth",
        "client_cert": str(pki.client_cert),
        "client_key": str(pki.client_key),
        **more,
    }


@pytest.fixture
def pk(home: Path, tls_lab: Lab, pki: Pki, planted: Seen, monkeypatch: pytest.MonkeyPatch) -> Lab:
    """[providers.pk]: lab-pkjwt with its RSA key; no client secret anywhere."""
    configure(home, {"ca_bundle": str(pki.ca)}, pk=pkjwt_table(tls_lab, pki))
    monkeypatch.setenv("PK_CLIENT_ID", PKJWT_CLIENT)
    return tls_lab


# -- private_key_jwt --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rsa", "ec", "ed"])
def test_private_key_jwt_gets_a_token_with_each_kind_of_key(
    home: Path, tls_lab: Lab, pki: Pki, planted: Seen, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(home, {"ca_bundle": str(pki.ca)}, pk=pkjwt_table(tls_lab, pki, kind))
    monkeypatch.setenv("PK_CLIENT_ID", PKJWT_CLIENT)
    before = len(tls_lab.token_requests())
    token = keyfob.get_token("pk")
    planted.add(token.access_token)
    assert tls_lab.token_requests()[before:] == [
        {
            "grant_type": "client_credentials",
            "client_id": PKJWT_CLIENT,
            "client_auth": "none",  # neither Basic nor client_secret: the assertion
            "auth_method": "private_key_jwt",
            "assertion": True,
            "client_cert": False,
            "status": 200,
        }
    ]
    info = tls_lab.introspect(token.access_token)
    assert (info["active"], info["client_id"]) == (True, PKJWT_CLIENT)


def test_private_key_jwt_refreshes_and_revokes_with_fresh_assertions(
    home: Path, tls_lab: Lab, pki: Pki, planted: Seen, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh token of lab-pkjwt (a code flow the test makes, with its own assertion):
    keyfob refreshes with it, then revokes both tokens, each request signed anew (the
    server refuses a replayed jti)."""
    key = serialization.load_pem_private_key(pki.keys["rsa"].read_bytes(), None)
    claims = {
        "iss": PKJWT_CLIENT,
        "sub": PKJWT_CLIENT,
        "aud": f"{tls_lab.issuer}/token",
        "jti": os.urandom(8).hex(),
        "exp": int(time.time()) + 60,
    }
    assertion = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "rsa-1"})  # type: ignore[arg-type]
    tokens = tls_lab.authorization_code(
        PKJWT_CLIENT,
        None,
        extra={"client_assertion_type": clientauth.ASSERTION_TYPE, "client_assertion": assertion},
    )
    planted.add(tokens["access_token"], tokens["refresh_token"])
    configure(
        home,
        {"ca_bundle": str(pki.ca)},
        pk=pkjwt_table(
            tls_lab, pki, grant="refresh_token", revoke_url=f"{tls_lab.issuer}/token/revocation"
        ),
    )
    monkeypatch.setenv("PK_CLIENT_ID", PKJWT_CLIENT)
    monkeypatch.setenv("PK_REFRESH_TOKEN", tokens["refresh_token"])
    before = len(tls_lab.token_requests())
    token = keyfob.get_token("pk")
    planted.add(token.access_token)
    (refreshed,) = tls_lab.token_requests()[before:]
    assert (refreshed["grant_type"], refreshed["assertion"], refreshed["status"]) == (
        "refresh_token",
        True,
        200,
    )
    keyfob.logout("pk", revoke=True)
    assert tls_lab.revocations()[-2:] == [
        {"client_id": PKJWT_CLIENT, "assertion": True, "status": 200},
        {"client_id": PKJWT_CLIENT, "assertion": True, "status": 200},
    ]
    assert tls_lab.introspect(token.access_token)["active"] is False


class Approver:
    """The person of a device login: approves the code in the lab's device page."""

    def __init__(self, context: ssl.SSLContext | None) -> None:
        self.context = context
        self.thread: threading.Thread | None = None

    def show_code(self, code: ShowCode) -> None:
        user = DevUser(login="bob", context=self.context)
        self.thread = threading.Thread(
            target=user.approve_device, args=(code.verification_uri_complete,)
        )
        self.thread.start()

    def sleep(self, seconds: float, until: float | None) -> None:
        time.sleep(seconds)

    def close(self) -> None:
        if self.thread is not None:
            self.thread.join(timeout=30)


def test_private_key_jwt_device_login_signs_every_poll(
    home: Path, pk: Lab, pki: Pki, planted: Seen
) -> None:
    table = pkjwt_table(pk, pki, scope="openid offline_access")
    configure(home, {"ca_bundle": str(pki.ca)}, pk=table)
    before = len(pk.token_requests())
    token = keyfob.login("pk", flow="device", person=Approver(pk.context))  # type: ignore[arg-type]
    planted.add(token.access_token, token.refresh_token)
    polls = pk.token_requests()[before:]
    assert polls and {p["grant_type"] for p in polls} == {
        "urn:ietf:params:oauth:grant-type:device_code"
    }
    assert all(p["assertion"] and p["auth_method"] == "private_key_jwt" for p in polls)
    assert polls[-1]["status"] == 200
    assert pk.introspect(token.access_token)["active"] is True


@pytest.mark.parametrize(
    ("key", "kid"),
    [("stranger", "rsa-1"), ("rsa", "not-registered")],
    ids=["another-key", "wrong-kid"],
)
def test_a_wrong_key_is_refused_exit_3(
    home: Path, pk: Lab, pki: Pki, cli: Any, key: str, kid: str
) -> None:
    path = pki.stranger if key == "stranger" else pki.keys[key]
    configure(
        home, {"ca_bundle": str(pki.ca)}, pk=pkjwt_table(pk, pki, private_key=str(path), key_id=kid)
    )
    before = len(pk.token_requests())
    done = cli("token", "pk", "--debug")
    assert done.returncode == 3, done.stderr
    assert "invalid_client" in done.stderr
    (refused,) = pk.token_requests()[before:]
    assert (refused["assertion"], refused["status"]) == (True, 401)
    with pytest.raises(InvalidCredentials):
        keyfob.get_token("pk")


def test_a_wrong_key_exits_3_with_one_line(home: Path, pk: Lab, pki: Pki, cli: Any) -> None:
    configure(
        home, {"ca_bundle": str(pki.ca)}, pk=pkjwt_table(pk, pki, private_key=str(pki.stranger))
    )
    done = cli("token", "pk")
    assert done.returncode == 3
    line = one_line_error(done)
    assert "refused the credentials" in line
    assert "check private_key and key_id in [providers.pk]" in line


def test_private_key_jwt_needs_no_client_secret_to_log_in(pk: Lab, cli: Any) -> None:
    shown = cli("providers")
    assert shown.returncode == 0, shown.stderr
    block = shown.stdout[shown.stdout.index("pk ") :]
    assert "needs: client_id (PK_CLIENT_ID);" in block
    assert "client auth: private_key_jwt (key " in block and "kid rsa-1" in block
    done = cli("login", "pk")  # no terminal, no PK_CLIENT_SECRET: nothing is missing
    assert done.returncode == 0, done.stderr
    assert "logged in to pk" in done.stderr


def test_the_assertion_names_the_client_the_token_endpoint_and_is_fresh_each_time(
    pki: Pki,
) -> None:
    """Sans I/O: the flow's requests as they leave it, read with the public key."""
    p = Provider(
        name="pk",
        kind=oauth2.KIND,
        token_url="https://auth.example.test/token",
        client_auth="private_key_jwt",
        required=("client_id",),
        signing_key=SigningKey(str(pki.keys["ec"]), "ec-1", None, "[providers.pk]"),
    )
    creds = Credentials()
    creds.add("client_id", "the-client", "argument")
    seen = []
    for _ in range(2):
        flow = clientauth.attach(p, oauth2.acquire(p, creds, 1000.0))
        request = next(flow)
        assert isinstance(request, HttpRequest)
        seen.append(request)
        with pytest.raises(StopIteration):
            flow.send(HttpResponse(200, {}, b'{"access_token": "t0ken-value"}', p.token_url or ""))
    public = serialization.load_pem_private_key(pki.keys["ec"].read_bytes(), None).public_key()
    claims = []
    for request in seen:
        assert request.basic is None and request.form is not None
        assert "client_secret" not in request.form
        assert request.form["client_assertion_type"] == clientauth.ASSERTION_TYPE
        signed = request.form["client_assertion"]
        assert jwt.get_unverified_header(signed)["kid"] == "ec-1"
        assert jwt.get_unverified_header(signed)["alg"] == "ES256"
        claims.append(
            jwt.decode(
                signed,
                public,  # type: ignore[arg-type]
                algorithms=["ES256"],
                audience="https://auth.example.test/token",
            )
        )
        assert signed in request.secrets  # scrubbed from anything the server echoes
    for c in claims:
        assert c["iss"] == c["sub"] == "the-client"
        assert c["exp"] - c["iat"] == clientauth.ASSERTION_LIFETIME
    assert claims[0]["jti"] != claims[1]["jti"]


# -- tls_client_auth ----------------------------------------------------------------------------


def test_tls_client_auth_gets_a_token_with_the_certificate(
    home: Path, tls_lab: Lab, pki: Pki, planted: Seen, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(home, {"ca_bundle": str(pki.ca)}, mt=mtls_table(tls_lab, pki))
    monkeypatch.setenv("MT_CLIENT_ID", MTLS_CLIENT)
    before = len(tls_lab.token_requests())
    token = keyfob.get_token("mt")
    planted.add(token.access_token)
    assert tls_lab.token_requests()[before:] == [
        {
            "grant_type": "client_credentials",
            "client_id": MTLS_CLIENT,
            "client_auth": "none",
            "auth_method": "tls_client_auth",
            "assertion": False,
            "client_cert": True,
            "status": 200,
        }
    ]


def test_a_certificate_of_another_subject_is_refused_exit_3(
    home: Path, tls_lab: Lab, pki: Pki, planted: Seen, cli: Any
) -> None:
    table = mtls_table(tls_lab, pki, client_cert=str(pki.other_cert), client_key=str(pki.other_key))
    configure(home, {"ca_bundle": str(pki.ca)}, mt=table)
    before = len(tls_lab.token_requests())
    done = cli("token", "mt", env={"MT_CLIENT_ID": MTLS_CLIENT})
    assert done.returncode == 3, done.stderr
    line = one_line_error(done)
    assert "invalid_client" in line
    assert f"check that {pki.other_cert} is the certificate the server has registered" in line
    (refused,) = tls_lab.token_requests()[before:]
    assert (refused["client_cert"], refused["status"]) == (True, 401)


def test_a_provider_certificate_comes_before_the_http_one(
    home: Path, tls_lab: Lab, pki: Pki, planted: Seen, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[http] names the other subject's certificate; [providers.mt] its own: mt succeeds,
    and mt2, with none of its own, presents [http]'s and is refused."""
    http = {
        "ca_bundle": str(pki.ca),
        "client_cert": str(pki.other_cert),
        "client_key": str(pki.other_key),
    }
    bare = mtls_table(tls_lab, pki, env_prefix="MT2")
    del bare["client_cert"], bare["client_key"]
    configure(home, http, mt=mtls_table(tls_lab, pki), mt2=bare)
    monkeypatch.setenv("MT_CLIENT_ID", MTLS_CLIENT)
    monkeypatch.setenv("MT2_CLIENT_ID", MTLS_CLIENT)
    planted.add(keyfob.get_token("mt").access_token)
    with pytest.raises(InvalidCredentials):
        keyfob.get_token("mt2")
    shown = cli("providers")
    assert f"client certificate: {pki.client_cert} (key {pki.client_key})" in shown.stdout
    assert f"client certificate: {pki.other_cert} (key {pki.other_key})" in shown.stdout


def test_tls_client_auth_without_a_certificate_is_a_config_error(
    home: Path, tls_lab: Lab, pki: Pki, cli: Any
) -> None:
    table = mtls_table(tls_lab, pki)
    del table["client_cert"], table["client_key"]
    configure(home, {"ca_bundle": str(pki.ca)}, mt=table)
    done = cli("token", "mt", env={"MT_CLIENT_ID": MTLS_CLIENT})
    assert done.returncode == 2
    line = one_line_error(done)
    assert "tls_client_auth" in line and "client_cert" in line


# -- a server that requires a client certificate -------------------------------------------------


@pytest.fixture
def strict(
    home: Path, strict_lab: Lab, pki: Pki, planted: Seen, monkeypatch: pytest.MonkeyPatch
) -> Lab:
    """[providers.strict]: lab-client (client_secret_basic) behind the strict lab; the
    certificate in [http]."""
    http = {
        "ca_bundle": str(pki.ca),
        "client_cert": str(pki.client_cert),
        "client_key": str(pki.client_key),
    }
    configure(home, http, strict=_strict_table(strict_lab))
    monkeypatch.setenv("STRICT_CLIENT_ID", CLIENT)
    monkeypatch.setenv("STRICT_CLIENT_SECRET", SECRET)
    return strict_lab


def _strict_table(lab: Lab) -> dict[str, Any]:
    return {"issuer": lab.issuer, "grant": "client_credentials", "env_prefix": "STRICT"}


def test_the_certificate_is_presented_to_a_server_that_requires_one(
    strict: Lab, planted: Seen
) -> None:
    before = len(strict.token_requests())
    planted.add(keyfob.get_token("strict").access_token)
    (sent,) = strict.token_requests()[before:]
    assert (sent["client_auth"], sent["client_cert"], sent["status"]) == ("basic", True, 200)


def test_the_async_driver_presents_the_certificate_too(strict: Lab, planted: Seen) -> None:
    before = len(strict.token_requests())
    token = asyncio.run(wiring.default().aget_token("strict"))
    planted.add(token.access_token)
    (sent,) = strict.token_requests()[before:]
    assert (sent["client_cert"], sent["status"]) == (True, 200)


def test_the_requests_driver_presents_the_certificate(strict: Lab, pki: Pki) -> None:
    from keyfob.requests_transport import RequestsTransport

    url = f"{strict.issuer}/.well-known/openid-configuration"
    cert = ClientCert(str(pki.client_cert), str(pki.client_key), "[http]")
    transport = RequestsTransport(HttpSettings(retries=0, ca_bundle=str(pki.ca)))
    try:
        assert transport.send(HttpRequest("GET", url, "discovery", cert=cert)).status == 200
        with pytest.raises(TransportError) as refused:
            transport.send(HttpRequest("GET", url, "discovery"))
        assert "client certificate" in refused.value.message
    finally:
        transport.close()


def test_without_a_certificate_the_handshake_fails_exit_4_with_a_hint(
    home: Path, strict: Lab, pki: Pki, cli: Any
) -> None:
    configure(home, {"ca_bundle": str(pki.ca)}, strict=_strict_table(strict))
    before = len(strict.token_requests())
    done = cli("token", "strict")
    assert done.returncode == 4, done.stderr
    line = one_line_error(done)
    assert "TLS handshake" in line and "client certificate" in line
    assert "set client_cert and client_key" in line
    assert strict.token_requests()[before:] == []


def test_an_encrypted_key_is_used_with_its_passphrase(
    home: Path, strict: Lab, pki: Pki, planted: Seen, cli: Any, tmp_path: Path
) -> None:
    key = serialization.load_pem_private_key(pki.client_key.read_bytes(), None)
    encrypted = _private(tmp_path / "encrypted.key", _pem(key, PASSPHRASE))
    http = {"ca_bundle": str(pki.ca), "client_cert": str(pki.client_cert)}
    configure(home, {**http, "client_key": str(encrypted)}, strict=_strict_table(strict))
    done = cli("token", "strict", "--debug", env={"KEYFOB_CLIENT_KEY_PASSWORD": PASSPHRASE})
    assert done.returncode == 0, done.stderr
    planted.add(done.stdout.strip())


# -- bad files: one line, exit 2, naming the setting and the file; nothing sent --------------


def _files(pki: Pki, tmp: Path) -> dict[str, Path]:
    not_pem = tmp / "not.pem"
    _private(not_pem, b"\x30\x82\x01\x0a garbage, DER or anything else")
    readable = tmp / "readable.key"
    readable.write_bytes(pki.client_key.read_bytes())
    readable.chmod(0o644)
    key = serialization.load_pem_private_key(pki.client_key.read_bytes(), None)
    return {
        "missing": tmp / "missing.pem",
        "not_pem": not_pem,
        "readable": readable,
        "encrypted": _private(tmp / "encrypted.key", _pem(key, PASSPHRASE)),
        "other_key": pki.other_key,
    }


@pytest.mark.parametrize(
    ("cert", "key", "password", "words", "setting"),
    [
        ("missing", "client", None, "does not exist", "client_cert"),
        ("not_pem", "client", None, "is not a certificate in PEM form", "client_cert"),
        ("client", "missing", None, "does not exist", "client_key"),
        ("client", "not_pem", None, "is not a private key in PEM form", "client_key"),
        ("client", "other_key", None, "does not match the certificate", "client_key"),
        ("client", "encrypted", None, "is encrypted and KEYFOB_CLIENT_KEY_PASSWORD", "client_key"),
        ("client", "encrypted", "not-the-passphrase", "cannot be decrypted", "client_key"),
        ("client", "readable", None, "readable by others (mode 0644)", "client_key"),
    ],
)
def test_a_bad_client_certificate_or_key_exits_2_naming_setting_and_file(
    home: Path,
    strict: Lab,
    pki: Pki,
    cli: Any,
    tmp_path: Path,
    cert: str,
    key: str,
    password: str | None,
    words: str,
    setting: str,
) -> None:
    files = {**_files(pki, tmp_path), "client": pki.client_cert}
    key_path = pki.client_key if key == "client" else files[key]
    cert_path = files[cert]
    http = {"ca_bundle": str(pki.ca), "client_cert": str(cert_path), "client_key": str(key_path)}
    configure(home, http, strict=_strict_table(strict))
    before = len(strict.token_requests())
    env = {"KEYFOB_CLIENT_KEY_PASSWORD": password} if password else {}
    done = cli("token", "strict", env=env)
    assert done.returncode == 2, done.stderr
    line = one_line_error(done)
    assert words in line
    assert f"[http] {setting}" in line
    assert str(cert_path if setting == "client_cert" else key_path) in line
    assert strict.token_requests()[before:] == []
    if password:
        assert password not in done.stderr
    with pytest.raises(ConfigError):
        keyfob.get_token("strict", client_id=CLIENT, client_secret=SECRET)


@pytest.mark.parametrize(
    ("key", "more", "password", "words"),
    [
        ("missing", {}, None, "does not exist"),
        ("not_pem", {}, None, "is not a private key in PEM form"),
        ("readable", {}, None, "readable by others"),
        ("encrypted", {}, None, "is encrypted and KEYFOB_PRIVATE_KEY_PASSWORD is not set"),
        ("encrypted", {}, "not-the-passphrase", "cannot be decrypted"),
        ("rsa", {"signing_alg": "ES256"}, None, "signing_alg ES256 does not fit"),
    ],
)
def test_a_bad_private_key_exits_2_naming_setting_and_file(
    home: Path,
    pk: Lab,
    pki: Pki,
    cli: Any,
    tmp_path: Path,
    key: str,
    more: dict[str, str],
    password: str | None,
    words: str,
) -> None:
    path = pki.keys["rsa"] if key == "rsa" else _files(pki, tmp_path)[key]
    table = pkjwt_table(pk, pki, private_key=str(path), **more)
    configure(home, {"ca_bundle": str(pki.ca)}, pk=table)
    before = len(pk.token_requests())
    env = {"KEYFOB_PRIVATE_KEY_PASSWORD": password} if password else {}
    done = cli("token", "pk", env=env)
    assert done.returncode == 2, done.stderr
    line = one_line_error(done)
    assert words in line and "[providers.pk]" in line and str(path) in line
    assert pk.token_requests()[before:] == []


def test_an_encrypted_private_key_signs_with_its_passphrase(
    home: Path, pk: Lab, pki: Pki, planted: Seen, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = serialization.load_pem_private_key(pki.keys["rsa"].read_bytes(), None)
    encrypted = _private(tmp_path / "encrypted.key", _pem(key, PASSPHRASE))
    configure(home, {"ca_bundle": str(pki.ca)}, pk=pkjwt_table(pk, pki, private_key=str(encrypted)))
    monkeypatch.setenv("KEYFOB_PRIVATE_KEY_PASSWORD", PASSPHRASE)
    planted.add(keyfob.get_token("pk").access_token)


# -- config ------------------------------------------------------------------------------------


def test_misspelt_keys_get_a_did_you_mean(
    home: Path, tls_lab: Lab, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    configure(
        home,
        {"client_crt": str(pki.client_cert)},
        pk={**pkjwt_table(tls_lab, pki), "privat_key": "x", "key_di": "y"},
    )
    keyfob.providers()
    text = caplog.text
    assert "did you mean `client_cert`?" in text
    assert "did you mean `private_key`?" in text
    assert "did you mean `key_id`?" in text


def test_a_private_key_without_private_key_jwt_is_warned_about(
    home: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    table = {"token_url": "https://auth.example.test/token", "private_key": str(pki.keys["rsa"])}
    configure(home, pk=table)
    keyfob.providers()
    assert 'private_key is used only with client_auth = "private_key_jwt"' in caplog.text


@pytest.mark.parametrize(
    ("http", "table", "words"),
    [
        ({"client_key": "k.pem"}, {}, "[http] has client_key but no client_cert"),
        ({}, {"private_key": None}, 'client_auth = "private_key_jwt" needs private_key'),
        ({}, {"signing_alg": "HS256"}, "signing_alg must be one of"),
        ({}, {"key_id": 7}, "key_id must be a non-empty string"),
        ({}, {"private_key": ""}, "private_key must be the path of a file"),
        ({}, {"client_auth": "client_secret_jwt"}, "client_auth must be one of"),
    ],
)
def test_bad_client_auth_config_is_a_config_error(
    home: Path, pki: Pki, http: dict[str, Any], table: dict[str, Any], words: str
) -> None:
    base = {
        "token_url": "https://auth.example.test/token",
        "client_auth": "private_key_jwt",
        "private_key": str(pki.keys["rsa"]),
    }
    merged = {k: v for k, v in {**base, **table}.items() if v is not None}
    configure(home, http, pk=merged)
    with pytest.raises(ConfigError) as refused:
        keyfob.providers()
    assert words in refused.value.message


def test_no_key_and_no_assertion_is_in_a_repr(pki: Pki) -> None:
    """The provider, and a request as it leaves attach() signed and with the certificate."""
    cert = ClientCert(str(pki.client_cert), str(pki.client_key), "[http]")
    p = Provider(
        name="pk",
        kind=oauth2.KIND,
        token_url="https://auth.example.test/token",
        client_auth="private_key_jwt",
        required=("client_id",),
        client_cert=cert,
        signing_key=SigningKey(str(pki.keys["rsa"]), "rsa-1", None, "[providers.pk]"),
    )
    creds = Credentials()
    creds.add("client_id", "the-client", "argument")
    request = next(clientauth.attach(p, oauth2.acquire(p, creds, 1000.0)))
    assert isinstance(request, HttpRequest) and request.form is not None
    signed = request.form["client_assertion"]
    text = repr(p) + repr(request) + repr(HttpSettings(client_cert=cert))
    assert str(pki.client_key) in text  # the path, not what the file holds
    assert signed not in text and signed.split(".")[2] not in text
    assert not any(line in text for line in pki.key_lines)


def test_a_subprocess_run_leaves_no_key_behind_in_debug_output(
    strict: Lab, pki: Pki, cli: Any, planted: Seen
) -> None:
    done = cli("token", "strict", "--debug", env={"KEYFOB_LOG": "debug"})
    assert done.returncode == 0, done.stderr
    planted.add(done.stdout.strip())
    assert "DEBUG" in done.stderr or "debug" in done.stderr.lower()


@pytest.mark.parametrize("setting", ["client_cert", "private_key"])
def test_a_fifo_in_place_of_a_file_is_refused_not_waited_on(
    home: Path, pk: Lab, pki: Pki, tmp_path: Path, setting: str
) -> None:
    fifo = tmp_path / "fifo.pem"
    os.mkfifo(fifo, 0o600)
    table = pkjwt_table(pk, pki, **{setting: str(fifo)})
    configure(home, {"ca_bundle": str(pki.ca)}, pk=table)
    started = time.monotonic()
    with pytest.raises(ConfigError) as refused:
        keyfob.get_token("pk")
    assert time.monotonic() - started < 5
    assert f"[providers.pk] {setting}: {fifo} is not a plain file" in refused.value.message


_VALUE = st.one_of(
    st.text(max_size=40),
    st.integers(),
    st.booleans(),
    st.lists(st.text(max_size=5), max_size=2),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    auth=st.sampled_from(["private_key_jwt", "tls_client_auth", "client_secret_basic", "x"]),
    values=st.dictionaries(
        st.sampled_from(["client_cert", "client_key", "private_key", "key_id", "signing_alg"]),
        _VALUE,
        max_size=5,
    ),
    http=st.dictionaries(st.sampled_from(["client_cert", "client_key", "ca_bundle"]), _VALUE),
)
def test_any_client_auth_table_is_read_or_refused_with_a_config_error(
    auth: str, values: dict[str, Any], http: dict[str, Any]
) -> None:
    """Whatever config.toml holds for these keys: providers, or a ConfigError."""
    from keyfob.config import load
    from keyfob.provider import registry

    table = {"token_url": "https://auth.example.test/token", "client_auth": auth, **values}
    folder = Path(tempfile.mkdtemp())
    try:
        text = tomli_w_dumps({"http": http, "providers": {"pk": table}})
        (folder / "config.toml").write_text(text)
        (folder / "config.toml").chmod(0o600)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("KEYFOB_CONFIG", str(folder / "config.toml"))
            try:
                found = registry(load({}))
            except ConfigError as exc:
                assert exc.message and "\n" not in exc.message
            else:
                assert "pk" in found
    finally:
        shutil.rmtree(folder)


def tomli_w_dumps(data: dict[str, Any]) -> str:
    """TOML for the few shapes the property test makes (JSON strings are TOML strings)."""
    lines = []
    for section, table in (("http", data["http"]), ("providers.pk", data["providers"]["pk"])):
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"
