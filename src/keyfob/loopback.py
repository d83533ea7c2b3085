"""The person's side of a login: the one-shot callback listener, the browser, the terminal.

``Listener`` binds 127.0.0.1 only (never 0.0.0.0), takes the first callback
on its path, and answers the browser tab with what the flow decided (a small
page: it worked, or why not). ``Terminal`` is the :class:`keyfob.flow.Person`
for the command line and for Python sessions: it opens the system browser (or
prints the address), lets a person on a terminal paste the address they were
sent back to, shows a device code large and plain (with a QR code where the
terminal can show one), and waits with a spinner only on a terminal.
"""

from __future__ import annotations

import errno
import html
import http.server
import queue
import sys
import threading
import time
import urllib.parse
from typing import IO, Any

from keyfob.errors import ConfigError, CredentialsMissing, InvalidCredentials
from keyfob.flow import AskPin, ShowCode

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>keyfob: {title}</title>
<style>
 body {{ font: 16px/1.5 system-ui, sans-serif; display: grid; place-items: center;
        min-height: 90vh; margin: 0; background: #f6f7f9; color: #1d2330; }}
 main {{ background: white; padding: 2rem 2.5rem; border-radius: 12px; max-width: 30rem;
        box-shadow: 0 2px 12px rgba(0,0,0,.08); text-align: center; }}
 .mark {{ font-size: 2.5rem; color: {color}; }}
 h1 {{ font-size: 1.3rem; margin: .3rem 0 .8rem; }}
 p {{ margin: .4rem 0; color: #4a5264; }}
</style></head>
<body><main><div class="mark">{mark}</div><h1>{title}</h1><p>{message}</p>
<p>You can close this tab and return to the terminal.</p></main></body></html>
"""


class Listener:
    """One callback, on 127.0.0.1:``port`` (0: any free port) at ``path``."""

    def __init__(self, port: int, path: str, *, verdict_timeout: float = 30.0) -> None:
        self.path = path
        self._callbacks: queue.Queue[dict[str, str]] = queue.Queue()
        self._verdict: queue.Queue[tuple[bool, str]] = queue.Queue()
        self._taken = threading.Lock()
        self._answered = False
        self._served = threading.Event()  # the tab has its page
        self._verdict_timeout = verdict_timeout
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                listener._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # request lines hold the code and state: never logged

        try:
            self._server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} on 127.0.0.1 is in use, and the login's redirect URI needs it",
                    hint="stop what listens there (another login?), then try again",
                ) from None
            raise ConfigError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="keyfob-callback", daemon=True
        )
        self._thread.start()

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def _handle(self, request: http.server.BaseHTTPRequestHandler) -> None:
        parts = urllib.parse.urlsplit(request.path)
        if parts.path != self.path:
            self._page(request, 404, False, "Not found", "This is keyfob's login listener.")
            return
        if not self._taken.acquire(blocking=False):
            self._page(
                request, 409, False, "Already done", "This login has already received its answer."
            )
            return
        params = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        self._callbacks.put(params)
        try:
            ok, message = self._verdict.get(timeout=self._verdict_timeout)
        except queue.Empty:
            ok, message = False, "keyfob stopped waiting for this login."
        try:
            self._page(
                request, 200 if ok else 400, ok, "Logged in" if ok else "Login failed", message
            )
        finally:
            self._served.set()

    @staticmethod
    def _page(
        request: http.server.BaseHTTPRequestHandler, status: int, ok: bool, title: str, message: str
    ) -> None:
        body = PAGE.format(
            title=html.escape(title),
            message=html.escape(message),
            mark="&#10003;" if ok else "&#10007;",
            color="#1a7f37" if ok else "#c62828",
        ).encode()
        request.send_response(status)
        request.send_header("Content-Type", "text/html; charset=utf-8")
        request.send_header("Content-Length", str(len(body)))
        request.send_header("Cache-Control", "no-store")
        request.send_header("Referrer-Policy", "no-referrer")
        request.end_headers()
        request.wfile.write(body)

    def wait(self, timeout: float) -> dict[str, str] | None:
        try:
            return self._callbacks.get(timeout=timeout)
        except queue.Empty:
            return None

    def answer(self, ok: bool, message: str) -> None:
        self._answered = True
        self._verdict.put((ok, message))

    def close(self) -> None:
        # A tab that brought the callback gets its page before the process may exit
        # (its handler is a daemon thread): the verdict, or that keyfob stopped.
        if self._taken.locked():
            if not self._answered:
                self.answer(False, "keyfob stopped before this login was finished.")
            self._served.wait(timeout=5)
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class Terminal:
    """The person at this terminal (or, without one, whoever reads stderr)."""

    def __init__(
        self,
        *,
        browser: bool = True,
        out: IO[str] | None = None,
        stdin: IO[str] | None = None,
    ) -> None:
        self.browser = browser
        self.out = out if out is not None else sys.stderr
        self.stdin = stdin if stdin is not None else sys.stdin
        self.listener: Listener | None = None
        self._spun = False
        self._said_waiting = False

    def _tty(self) -> bool:
        return bool(getattr(self.out, "isatty", lambda: False)())

    def _stdin_tty(self) -> bool:
        return bool(getattr(self.stdin, "isatty", lambda: False)())

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    # -- browser login -------------------------------------------------------

    def listen(self, port: int, path: str) -> str:
        self.listener = Listener(port, path)
        return self.listener.redirect_uri

    def open_browser(self, url: str) -> None:
        opened = False
        if self.browser:
            import webbrowser

            try:
                opened = webbrowser.open(url)
            except Exception:  # a broken browser setting must not end the login
                opened = False
        if opened:
            self.say("A browser window is open to log in. If it did not open, visit:")
        else:
            self.say("To log in, visit this address in a browser:")
        self.say(f"\n    {url}\n")
        if self._stdin_tty():
            self.say(
                "If that browser runs on another machine, paste here the address it was "
                "sent back to (it starts with the redirect URI)."
            )

    def await_callback(self, timeout: float) -> dict[str, str]:
        assert self.listener is not None
        pasted: queue.Queue[dict[str, str]] = queue.Queue()
        if self._stdin_tty():
            threading.Thread(target=self._read_paste, args=(pasted,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            params = self.listener.wait(min(0.2, max(0.0, deadline - time.monotonic())))
            if params is not None:
                return params
            try:
                return pasted.get_nowait()
            except queue.Empty:
                continue
        raise InvalidCredentials(
            f"no answer from the browser within {timeout:g} s; the login timed out",
            hint="start the login again; `--timeout SECONDS` gives more time",
        )

    def _read_paste(self, into: queue.Queue[dict[str, str]]) -> None:
        for line in self.stdin:
            query = urllib.parse.urlsplit(line.strip()).query
            params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
            if params.keys() & {"code", "error", "oauth_verifier", "denied"}:
                into.put(params)
                return
            self.say("That address has no code in it; paste the whole address.")

    def finish(self, ok: bool, message: str) -> None:
        if self.listener is not None:
            self.listener.answer(ok, message)

    # -- OAuth 1.0a out of band (PIN) --------------------------------------------

    def ask_pin(self, ask: AskPin) -> str:
        """The address to allow access at (once), then the PIN, read on the terminal.
        Without a terminal there is no one to type it: CredentialsMissing (exit 3)."""
        if not self._stdin_tty():
            raise CredentialsMissing(
                "a PIN login needs a terminal to type the PIN on",
                hint="run `keyfob login PROVIDER --flow pin` in a terminal, or use "
                "--flow browser or --flow paste",
            )
        if ask.first:
            self.say("To log in, visit this address in a browser and allow access:")
            self.say(f"\n    {ask.url}\n")
        else:
            self.say(f"That PIN was refused; try again ({ask.tries_left} left).")
        self.out.write("PIN shown on the page: ")
        self.out.flush()
        line = self.stdin.readline()
        if not line:
            raise CredentialsMissing("no PIN was typed", hint="start the login again")
        return line.strip()

    # -- device flow -----------------------------------------------------------

    def show_code(self, code: ShowCode) -> None:
        """The address and the code first, in a few lines, so that they stay on an
        80x24 screen; the QR code of the address that carries the code only below
        them, and only where the terminal has the room for it and the spinner."""
        minutes = max(1, round((code.expires_at - time.time()) / 60))
        lines = [
            "To log in, open this address on any device:",
            "",
            f"    {code.verification_uri}",
            "",
            f"and enter the code (it expires in {minutes} minute{'s' if minutes != 1 else ''}):",
            "",
            f"    {code.user_code}",
            "",
        ]
        complete = code.verification_uri_complete
        qr = self._qr(complete).splitlines() if complete and self._tty() else []
        if qr:
            columns, rows = self._size()
            # the two lines of the address below, then the spinner, and one line is kept
            # for the prompt above
            if len(lines) + 2 + len(qr) + 2 > rows or len(qr[0]) > columns:
                qr = []
        if complete:
            carries = " (as does the QR code below):" if qr else ":"
            lines += [f"or open this address, which carries the code{carries}", f"    {complete}"]
        for line in lines + qr:
            self.say(line)

    def _size(self) -> tuple[int, int]:
        import os
        import shutil

        try:
            size = os.get_terminal_size(self.out.fileno())
        except (AttributeError, OSError, ValueError):
            size = shutil.get_terminal_size()
        return size.columns, size.lines

    @staticmethod
    def _qr(text: str) -> str:
        try:
            import segno
        except ImportError:
            return ""
        import io

        buffer = io.StringIO()
        segno.make(text, error="l").terminal(out=buffer, compact=True, border=2)
        return buffer.getvalue()

    def sleep(self, seconds: float, until: float | None) -> None:
        if not self._tty():
            if not self._said_waiting:
                self.say("Waiting for the login to be approved…")
                self._said_waiting = True
            time.sleep(seconds)
            return
        end = time.monotonic() + seconds
        frame = 0
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            rest = ""
            if until is not None:
                remaining = max(0, int(until - time.time()))
                rest = f" ({remaining // 60}:{remaining % 60:02d} left)"
            self.out.write(f"\r{SPINNER[frame % len(SPINNER)]} waiting for approval{rest}  ")
            self.out.flush()
            self._spun = True
            frame += 1
            time.sleep(min(0.1, left))

    def close(self) -> None:
        if self._spun:
            self.out.write("\r\033[K")
            self.out.flush()
            self._spun = False
        if self.listener is not None:
            self.listener.close()
            self.listener = None
