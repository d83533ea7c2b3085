"""``python -m keyfob.testing``: the local provider, by hand.

Starts the local provider on 127.0.0.1, writes its config.toml into a
throw-away ``KEYFOB_HOME`` (or ``--home``), prints the ``export`` lines and the
config to use it from another shell, and runs until Ctrl-C. Every account in it
is made up; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

from keyfob.testing.server import LocalProvider


def _exports(values: dict[str, str], prefix: str) -> str:
    pairs = " ".join(f"{k}={shlex.quote(v)}" for k, v in values.items() if k.startswith(prefix))
    return f"export {pairs}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m keyfob.testing",
        description="Run keyfob's local provider (iNaturalist, TreeSnap, Twitter/X and a plain "
        "OAuth2 server, with made-up accounts) until Ctrl-C, to try keyfob by hand, offline.",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any)")
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="the KEYFOB_HOME to write config.toml into, kept afterwards "
        "(default: a throw-away folder, removed on exit)",
    )
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Ctrl-C and SIGTERM end the wait below: a clean stop, never a traceback.
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGTERM, on_term)
    home = args.home or Path(tempfile.mkdtemp(prefix="keyfob-local-"))
    try:
        with LocalProvider(port=args.port) as provider:
            home.mkdir(parents=True, exist_ok=True)
            config = provider.config_toml()
            (home / "config.toml").write_text(config)
            values = {
                **provider.environ(),
                "TREESNAP_TOKEN": provider.issue_treesnap_token(),
            }
            lines = [
                f"keyfob's local provider runs at {provider.url}:",
                "iNaturalist, TreeSnap, Twitter/X and a plain OAuth2 server named `local`, "
                "with made-up accounts.",
                "",
                "In another shell, to try any keyfob command against it:",
                "",
                f"export KEYFOB_HOME={shlex.quote(str(home))} KEYFOB_KEYRING=file",
                *(_exports(values, p) for p in ("INAT_", "TREESNAP_", "TWITTER_", "LOCAL_")),
                "",
                "then, say: keyfob login inaturalist; keyfob token local; keyfob status;",
                "keyfob login local --flow device (approve on the page it shows)",
                "",
                "OAuth 1.0a: X's at /oauth/request_token, /oauth/authorize and "
                "/oauth/access_token (TWITTER_API_KEY and TWITTER_API_SECRET are its consumer);",
                'a plain server for `protocol = "oauth1"` providers, consumer key '
                f"{provider.oauth1_consumer_key}, secret {provider.oauth1_consumer_secret}:",
                *(f"  {name}: {url}" for name, url in provider.oauth1_urls().items()),
                "",
                f"The config.toml in that KEYFOB_HOME ({home / 'config.toml'}):",
                "",
                config.rstrip(),
                "",
                "Ctrl-C stops the provider"
                + (" and removes that folder." if args.home is None else "."),
            ]
            print("\n".join(lines), flush=True)
            while not stop.wait(3600):
                pass
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)
    print("keyfob's local provider stopped.", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
