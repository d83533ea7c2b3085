"""The ``keyfob`` entry point: ``token``/``header`` straight from the cache when it can.

A valid cached token is answered after importing ``sqlite3`` and three small
keyfob modules, nothing else: no click, no config.toml parser, no httpx, no
keyring. It asks the same questions as the broker, with the same code
(``_identity.trusts`` and ``Token.state``); config.toml is not parsed but its
signature (path, size, mtime) must match the one the entry was saved under.
Anything it cannot answer for certain goes to the full command line.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if budget_taken(args):
        return 0
    answer = cached_answer(args)
    if answer is not None:
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()
        return 0
    from keyfob.cli import main as full

    return full(args)


def budget_taken(args: list[str]) -> bool:
    """``keyfob wait PROVIDER [--account A]`` with budget left, from the budget file."""
    if len(args) not in (2, 4) or args[0] != "wait" or args[1].startswith("-"):
        return False
    account = ""
    if len(args) == 4:
        if args[2] != "--account":
            return False
        account = args[3]
    if os.environ.get("KEYFOB_CACHE_URL") or not quiet():
        return False  # Redis, or logging asked for: the full command line
    from keyfob import _budgetfile, _paths

    key = f"{args[1]}\0{account}"
    now_ms = int(time.time() * 1000)
    return _budgetfile.take(_paths.cache_dir(), key, _paths.config_signature(), now_ms) is True


def quiet() -> bool:
    """Whether KEYFOB_LOG lets the fast path answer: not debug, nor a level the full
    command line refuses (the full command line answers those)."""
    return os.environ.get("KEYFOB_LOG", "").strip().lower() in ("", "info", "warning")


def cached_answer(args: list[str]) -> str | None:
    if len(args) < 2 or args[0] not in ("token", "header"):
        return None
    if not quiet():
        return None
    provider, account, rest = None, "", args[1:]
    while rest:
        arg = rest.pop(0)
        if arg == "--account" and rest:
            account = rest.pop(0)
        elif arg.startswith("--account="):
            account = arg.split("=", 1)[1]
        elif not arg.startswith("-") and provider is None:
            provider = arg
        else:
            return None  # --json, --refresh, --debug, --help ...: the full command line
    if not provider:
        return None

    from keyfob import _identity, _paths
    from keyfob.cache.sqlite import read_entry
    from keyfob.token import TokenState

    entry = read_entry(_paths.cache_file(), (provider, account))
    if entry is None or entry.config_sig != _paths.config_signature():
        return None
    now = time.time()
    if _identity.trusts(provider, entry, os.environ, now) is not True:
        return None
    if entry.token.state(now, entry.leeway) is not TokenState.FRESH:
        return None
    if args[0] == "token":
        return entry.token.access_token
    return "Authorization: " + entry.token.authorization
