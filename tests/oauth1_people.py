"""What the OAuth 1.0a tests share: config for the emulator's servers, and a person whose
browser follows the authorize address (the emulator approves as its signed-in user)."""

from __future__ import annotations

import io
import re
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from keyfob.flow import AskPin
from keyfob.loopback import Terminal
from keyfob.testing import LocalProvider


def x_config(local: LocalProvider) -> str:
    """[providers.twitter-oauth1] at the emulator's X endpoints."""
    u = local.oauth1_urls(x=True)
    return (
        "[providers.twitter-oauth1]\n"
        f'request_token_url = "{u["request_token"]}"\n'
        f'authorize_url = "{u["authorize"]}"\n'
        f'access_token_url = "{u["access_token"]}"\n'
        f'revoke_url = "{u["revoke"]}"\n'
        f'api_url = "{local.url}/1.1"\n'
    )


def write_config(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)


@dataclass
class Page:
    status: int
    location: str
    text: str


class _Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_Stay)


def fetch(url: str, timeout: float = 20, context: ssl.SSLContext | None = None) -> Page:
    """GET ``url`` as a browser's address bar would, without following a redirect (with
    urllib: the tests' own requests must not log the tokens in their addresses);
    ``context``: the browser's TLS (its CAs, its client certificate)."""
    opener = (
        _opener
        if context is None
        else urllib.request.build_opener(_Stay, urllib.request.HTTPSHandler(context=context))
    )
    try:
        with opener.open(url, timeout=timeout) as answer:
            return Page(answer.status, answer.headers.get("Location", ""), answer.read().decode())
    except urllib.error.HTTPError as exc:
        with exc:
            return Page(exc.code, exc.headers.get("Location", ""), exc.read().decode())


def pin_of(page: str) -> str:
    """The PIN on the emulator's (and X's) PIN page."""
    found = re.search(r"<code>([^<]+)</code>", page)
    assert found, page
    return found.group(1)


class Browser:
    """A :class:`keyfob.flow.Person` whose browser follows the authorize address at once;
    ``tamper`` changes the callback address before it is delivered (a forgery), ``pins``
    are typed before the real PIN (wrong ones)."""

    def __init__(
        self,
        *,
        tamper: Callable[[str], str] | None = None,
        pins: tuple[str, ...] = (),
        context: ssl.SSLContext | None = None,
    ) -> None:
        self.context = context
        self.terminal = Terminal(browser=False, out=io.StringIO())
        self.tamper = tamper
        self.wrong = list(pins)
        self.threads: list[threading.Thread] = []
        self.tab: list[Page] = []  # what the browser tab showed after the callback
        self.pages = 0
        self.asked: list[AskPin] = []

    def listen(self, port: int, path: str) -> str:
        return self.terminal.listen(port, path)

    def open_browser(self, url: str) -> None:
        def follow() -> None:
            location = fetch(url, context=self.context).location
            self.pages += 1
            if self.tamper is not None:
                location = self.tamper(location)
            self.tab.append(fetch(location, context=self.context))

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        self.threads.append(thread)

    def await_callback(self, timeout: float) -> dict[str, str]:
        return self.terminal.await_callback(timeout)

    def finish(self, ok: bool, message: str) -> None:
        self.terminal.finish(ok, message)

    def ask_pin(self, ask: AskPin) -> str:
        self.asked.append(ask)
        if self.wrong:
            return self.wrong.pop(0)
        self.pages += 1
        return pin_of(fetch(ask.url, context=self.context).text)

    def show_code(self, code: object) -> None:
        raise AssertionError("no device code in OAuth 1.0a")

    def sleep(self, seconds: float, until: float | None) -> None:
        raise AssertionError("nothing to wait for in OAuth 1.0a")

    def close(self) -> None:
        for thread in self.threads:
            thread.join(timeout=20)
        self.terminal.close()
