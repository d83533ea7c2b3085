"""Browserless "end user" for node-oidc-provider's devInteractions (stdlib only).

A copy of the verified recipe (shared/recipes/oidc-provider/devuser.py), used by
tests/test_oidc_provider.py to log in and consent in the authorization code flow.

The built-in login/consent/device pages are plain HTML forms, so a cookie-keeping HTTP client can
complete them. Useful in Python test suites that have no Chromium.

    from devuser import DevUser
    cb = DevUser().authorize(auth_url, stop_at="http://127.0.0.1:5555/callback")  # -> callback URL
    DevUser().approve_device(verification_uri_complete)                           # -> True

Self-test:  ISSUER=http://127.0.0.1:9090 python3 devuser.py
"""

import base64
import hashlib
import http.cookiejar
import json
import os
import re
import secrets
import urllib.parse
import urllib.request


class _StopRedirect(Exception):
    def __init__(self, url):
        self.url = url


class DevUser:
    def __init__(self, login="alice", password="any", context=None):
        self.login, self.password = login, password
        self.stop_at = None
        outer = self

        class Redirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, req, fp, code, msg, headers, newurl):
                if outer.stop_at and newurl.startswith(outer.stop_at):
                    raise _StopRedirect(newurl)  # do not fetch the client's callback
                return super().redirect_request(req, fp, code, msg, headers, newurl)

        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
            Redirect,
            urllib.request.HTTPSHandler(context=context),  # an https:// lab's CA
        )

    def _open(self, url, data=None):
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        with self.opener.open(url, body, timeout=10) as r:
            return r.geturl(), r.read().decode()

    @staticmethod
    def _form(html):
        m = re.search(r'<form[^>]*action="([^"]+)"', html)
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
        return (m.group(1) if m else None), fields

    def _drive(self, url, html, max_steps=8):
        for _ in range(max_steps):
            action, fields = self._form(html)
            if 'name="login"' in html:
                url, html = self._open(
                    action, {"prompt": "login", "login": self.login, "password": self.password}
                )
            elif fields.get("prompt") == "consent":
                url, html = self._open(action, {"prompt": "consent"})
            elif (
                "user_code" in fields and "xsrf" in fields
            ):  # device: auto-submit page, then confirm page
                data = dict(fields)
                if 'id="op.deviceConfirmForm"' in html:
                    data["confirm"] = "yes"
                url, html = self._open(action, data)
            else:
                return url, html
        raise RuntimeError(f"too many steps, at {url}")

    def authorize(self, auth_url, stop_at):
        """Open the authorization URL, log in, consent; return the redirect to `stop_at...`."""
        self.stop_at = stop_at
        try:
            url, html = self._open(auth_url)
            url, html = self._drive(url, html)
        except _StopRedirect as s:
            return s.url
        raise RuntimeError(f"no redirect to {stop_at}; ended at {url}: {html[:300]}")

    def approve_device(self, verification_uri_complete):
        url, html = self._open(verification_uri_complete)
        url, html = self._drive(url, html)
        if "Sign-in Success" not in html:
            raise RuntimeError(f"device flow not approved; at {url}: {html[:300]}")
        return True


def _selftest():
    issuer = os.environ.get("ISSUER", "http://127.0.0.1:9090")
    cid, csec = "lab-client", "lab-secret"
    meta = json.load(urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration"))
    basic = "Basic " + base64.b64encode(f"{cid}:{csec}".encode()).decode()

    def token(form):
        req = urllib.request.Request(
            meta["token_endpoint"], urllib.parse.urlencode(form).encode(), {"Authorization": basic}
        )
        try:
            return json.load(urllib.request.urlopen(req))
        except urllib.error.HTTPError as e:
            return json.load(e)

    redirect_uri = "http://127.0.0.1:45678/callback"  # any port: lab-client is a "native" client
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    state = secrets.token_urlsafe(8)
    auth = (
        meta["authorization_endpoint"]
        + "?"
        + urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": cid,
                "redirect_uri": redirect_uri,
                "state": state,
                "scope": "openid offline_access",
                "prompt": "consent",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
    )
    cb = DevUser().authorize(auth, stop_at=redirect_uri)
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(cb).query))
    assert q["state"] == state, q
    tok = token(
        {
            "grant_type": "authorization_code",
            "code": q["code"],
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
    )
    print("code flow:", sorted(tok))
    assert "access_token" in tok and "refresh_token" in tok, tok

    req = urllib.request.Request(
        meta["device_authorization_endpoint"],
        urllib.parse.urlencode({"scope": "openid"}).encode(),
        {"Authorization": basic},
    )
    da = json.load(urllib.request.urlopen(req))
    print(
        "device poll before:",
        token(
            {
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                "device_code": da["device_code"],
            }
        ).get("error"),
    )
    DevUser(login="bob").approve_device(da["verification_uri_complete"])
    dt = token(
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": da["device_code"],
        }
    )
    print("device flow:", sorted(dt))
    assert "access_token" in dt, dt
    print("devuser self-test OK")


if __name__ == "__main__":
    _selftest()
