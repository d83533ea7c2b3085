"""The command line: parses, calls the library, prints. Answers on stdout, talk on stderr.

Exit status: 0 success; 2 usage or configuration; 3 credentials missing,
rejected or locked away; 4 the provider or the network failed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import click

from keyfob import wiring
from keyfob.accounts import Accounts, LoginPlan
from keyfob.broker import Broker
from keyfob.errors import ConfigError, CredentialsMissing, InvalidCredentials, KeyfobError
from keyfob.provider import FLOWS
from keyfob.provider.base import FLOW_WORDS, login_command

log = logging.getLogger("keyfob")


def _broker_() -> Broker:
    return wiring.default()


def _accounts() -> Accounts:
    return wiring.accounts()


def _say(message: str) -> None:
    click.echo(message, err=True)


ACCOUNT_HELP = "A named account (default: the one the secrets name)."


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--debug", is_flag=True, help="Show tracebacks and debug logs (also after the command name)."
)
@click.version_option(package_name="keyfob")
def cli(debug: bool) -> None:
    """Get, keep, refresh and apply API access tokens.

    \b
      keyfob login inaturalist    ask once, keep the secrets in the keyring
      keyfob token inaturalist    a valid token: cached, refreshed when due
      keyfob exec twitter -- CMD  run CMD with the token in TWITTER_TOKEN

    Tokens and headers go to stdout; every message goes to stderr.

    \b
    Exit status: 0 success; 2 usage or configuration; 3 credentials
    missing, rejected or locked away; 4 the provider or the network failed.

    \b
    Environment: KEYFOB_CONFIG (the config file), KEYFOB_HOME (one folder
    for config, cache and secrets file), KEYFOB_LOG (debug, info, warning),
    KEYFOB_KEYRING (file, keyring), KEYFOB_CACHE_URL (a redis:// URL),
    KEYFOB_TIMEOUT (seconds).
    """


@cli.command()
def providers() -> None:
    """Known providers, their grant, and the secrets each needs."""
    b = _broker_()
    for name in sorted(b.providers):
        p = b.providers[name]
        needs = ", ".join(f"{n} ({' or '.join(p.env_vars(n))})" for n in p.required)
        origin = "built-in" if p.builtin else "config.toml"
        grant = p.grant if p.kind.signer is None else p.kind.protocol
        click.echo(f"{name:<14} {grant:<18} {origin:<11} {p.description or ''}")
        click.echo(f"{'':<14} needs: {needs or '-'}; keyring service: {p.service()}")
        # an OAuth 1.0a consumer signs every request: no token-endpoint client auth to show
        oauth2_client = p.kind.signer is None and p.kind.client[0] in p.secrets
        auth = [f"client auth: {p.client_auth}"] if oauth2_client else []
        if auth and p.signing_key is not None:
            kid = f", kid {p.signing_key.key_id}" if p.signing_key.key_id else ""
            auth[0] += f" (key {p.signing_key.path}{kid})"
        if p.client_cert is not None:
            auth.append(f"client certificate: {p.client_cert}")
        if auth:
            click.echo(f"{'':<14} {'; '.join(auth)}")
    _network_lines(b)


def _network_lines(b: Broker) -> None:
    """Which proxy and CA bundle requests go through, and where each was set."""
    click.echo("")
    for line in b.transport.network.describe():
        click.echo(line)
    b.transport.tls_context()  # a CA bundle that is not one: exit 2, naming where it was set


_FLOW_HELP = "How to log in (default: the provider's own way; `keyfob providers` lists them): " + (
    "; ".join(f"{name}: {words}" for name, words in FLOW_WORDS.items()) + "."
)
#: tries at a refused login on a terminal, asking again for what was refused
_TRIES = 3


@cli.command()
@click.argument("provider")
@click.option("--account", default=None, help=ACCOUNT_HELP)
@click.option("--flow", type=click.Choice(FLOWS), default=None, help=_FLOW_HELP)
@click.option(
    "--no-browser", is_flag=True, help="--flow browser: print the address instead of opening it."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=300,
    show_default=True,
    help="--flow browser: seconds to wait for the browser.",
)
def login(
    provider: str, account: str | None, flow: str | None, no_browser: bool, timeout: float
) -> None:
    """Ask for what is missing, store it, get a first token."""
    accounts = _accounts()
    plan = accounts.plan(provider, account=account, flow=flow)
    p = plan.provider
    terminal = sys.stdin.isatty()
    given: dict[str, Any] = {}
    if plan.missing and terminal:
        _ask(plan, plan.missing, given)
    elif plan.missing and not set(plan.missing) <= plan.optional:
        needed = [n for n in plan.missing if n not in plan.optional]
        raise CredentialsMissing(
            f"{p.name} needs {', '.join(needed)} and there is no terminal to ask on",
            hint=f"set {', '.join(p.env_var(n) for n in needed)}, or run "
            f"`{login_command(p, account, flow)}` in a terminal",
        )
    if plan.flow == "pin" and not terminal:
        raise CredentialsMissing(
            f"a PIN login to {p.name} needs a terminal to type the PIN on",
            hint=f"run `{login_command(p, account, 'pin')}` in a terminal, or use "
            "--flow browser or --flow paste",
        )
    extra: dict[str, Any] = {}
    if plan.flow in ("browser", "device", "pin"):
        from keyfob.loopback import Terminal

        extra = {"person": Terminal(browser=not no_browser), "timeout": timeout}
    for tries_left in range(_TRIES - 1, -1, -1):
        try:
            token = accounts.login(provider, account=account, flow=flow, **given, **extra)
            break
        except InvalidCredentials as exc:
            again = plan.refused(exc)
            if not (terminal and again and tries_left):
                raise
            _say(f"keyfob: {exc}; try again ({tries_left} more)")
            _ask(plan, again, given)
    store = _broker_().store.describe()
    _say(f"logged in to {p.name}; {_expiry(token.expires)}; secrets kept in {store}")


def _ask(plan: LoginPlan, names: Sequence[str], given: dict[str, Any]) -> None:
    """Prompt for each name on the terminal: secrets hidden, a name typed before as the
    default (Enter keeps it)."""
    for name in names:
        before = None if plan.hidden(name) else given.get(name) or plan.known.get(name)
        optional = name in plan.optional
        value = click.prompt(
            plan.prompt(name),
            hide_input=plan.hidden(name),
            default=before if before else ("" if optional else None),
            show_default=bool(before),
            err=True,
        )
        if value:
            given[name] = value
        else:
            given.pop(name, None)


def _expiry(expires: float | None) -> str:
    if expires is None:
        return "the token does not expire"
    return f"the token expires in {_duration(expires - time.time())}"


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 0:
        return "expired"
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d}d {h}h"
    if h:
        return f"{h}h {m}m"
    return f"{m}m {s}s" if m else f"{s}s"


@cli.command()
@click.argument("provider")
@click.option("--account", default=None, help=ACCOUNT_HELP)
@click.option(
    "--refresh",
    is_flag=True,
    help="Use no cached token: repeat the provider's grant with the secrets.",
)
@click.option("--json", "as_json", is_flag=True, help="Token, type and expiry as JSON.")
def token(provider: str, account: str | None, refresh: bool, as_json: bool) -> None:
    """Print a valid access token."""
    # An OAuth 1.0a provider has no token to print: its kind says what to use instead.
    t = _broker_().get_token(provider, account=account, refresh=refresh)
    if as_json:
        expires_at = t.expires_at
        click.echo(
            json.dumps(
                {
                    "access_token": t.access_token,
                    "token_type": t.token_type,
                    "expires_at": expires_at.isoformat().replace("+00:00", "Z")
                    if expires_at
                    else None,
                    "expires_at_epoch": int(t.expires) if t.expires is not None else None,
                    "scope": t.scope,
                }
            )
        )
    else:
        click.echo(t.access_token)


@cli.command()
@click.argument("provider")
@click.option("--account", default=None, help=ACCOUNT_HELP)
@click.option(
    "--method",
    default=None,
    help="OAuth 1.0a: the request's method (default GET, or POST with --data).",
)
@click.option("--url", default=None, help="OAuth 1.0a: the request's URL, its query included.")
@click.option(
    "--data",
    "data",
    multiple=True,
    metavar="K=V",
    help="OAuth 1.0a: a field of the request's form body (repeatable), signed with it.",
)
def header(
    provider: str,
    account: str | None,
    method: str | None,
    url: str | None,
    data: tuple[str, ...],
) -> None:
    """Print the Authorization header (OAuth 1.0a: of one request).

    A bearer token's header is the same for every request: --method, --url and
    --data are accepted and not needed. An OAuth 1.0a provider signs one
    request: give its --url (and --method, --data K=V for a form body).
    """
    b = _broker_()
    signer = b.signer(provider, account=account) if b.provider(provider).kind.signer else None
    if signer is None:
        click.echo("Authorization: " + b.get_token(provider, account=account).authorization)
        return
    if not url:
        raise ConfigError(
            f"{provider} signs each request (OAuth 1.0a): give the request's --url",
            hint=f'run `keyfob header {provider} --method GET --url "https://..."`',
        )
    form: list[tuple[str, str]] = []
    for item in data:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise ConfigError(f"--data {item!r} is not K=V", hint="give each field as --data K=V")
        form.append((name, value))
    verb = (method or ("POST" if form else "GET")).upper()
    click.echo("Authorization: " + signer.header(verb, url, dict(form) if form else None))


# Options may follow PROVIDER (`exec PROVIDER --env VAR -- CMD…`); `--` ends them.
@cli.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("provider")
@click.option("--account", default=None, help=ACCOUNT_HELP)
@click.option(
    "--env", "var", default=None, help="The variable for the token (default: <PROVIDER>_TOKEN)."
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(provider: str, account: str | None, var: str | None, command: tuple[str, ...]) -> None:
    """Run COMMAND with the token in its environment.

    The token goes in one variable (--env) and is written nowhere else. Put --
    before COMMAND: keyfob exec twitter -- curl URL

    An OAuth 1.0a provider's child signs its own requests: it gets the access
    token in VAR, its secret in VAR_SECRET, and the consumer key and secret in
    <PROVIDER>_CONSUMER_KEY and <PROVIDER>_CONSUMER_SECRET (with --env VAR: VAR
    without its _TOKEN ending, then _CONSUMER_KEY ...).
    """
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise click.UsageError("give the command to run after --")
    if var is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
        raise ConfigError(
            f"--env {var!r} is not an environment variable name",
            hint="use letters, digits and _, not starting with a digit, e.g. --env API_TOKEN",
        )
    b = _broker_()
    name = var or "".join(c if c.isalnum() else "_" for c in provider.upper()) + "_TOKEN"
    env = dict(os.environ)
    if b.provider(provider).kind.signer is not None:
        # OAuth 1.0a: the child signs its own requests, so it gets all four secrets.
        four = b.signing_secrets(provider, account=account)
        stem = name.removesuffix("_TOKEN")
        env[name] = four["token"]
        env[name + "_SECRET"] = four["token_secret"]
        env[stem + "_CONSUMER_KEY"] = four["consumer_key"]
        env[stem + "_CONSUMER_SECRET"] = four["consumer_secret"]
    else:
        env[name] = b.get_token(provider, account=account).access_token
    try:
        done = subprocess.run(list(command), env=env, check=False)
    except FileNotFoundError:
        raise ConfigError(f"command not found: {command[0]}", hint="check the command") from None
    except PermissionError:
        raise ConfigError(f"cannot run {command[0]}: permission denied") from None
    sys.exit(done.returncode)


@cli.command()
@click.argument("provider", required=False)
def status(provider: str | None) -> None:
    """Tokens and secrets: when each expires, where each is kept.

    A table: provider, account, token kind, expires in, where each secret is kept.
    """
    b = _broker_()
    rows = Accounts(b).status(provider)
    header_ = ("PROVIDER", "ACCOUNT", "TOKEN", "EXPIRES IN", "SECRETS")
    table = [header_]
    for r in rows:
        if not r.has_token:
            expires = "-"
        elif r.expires_in is None:
            expires = "never"
        else:
            expires = _duration(r.expires_in) + ("" if r.state == "fresh" else f" ({r.state})")
        by_source: dict[str, list[str]] = {}
        for name, source in r.secrets.items():
            by_source.setdefault(source, []).append(name)
        secrets = "; ".join(f"{', '.join(n)}: {s}" for s, n in by_source.items()) or "-"
        table.append((r.provider, r.account or "-", r.kind, expires, secrets))
    if len(table) == 1:
        _say("no tokens and no stored secrets" + (f" for {provider}" if provider else ""))
        return
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        click.echo(
            "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=False))
            + "  "
            + row[4]
        )
    _network_lines(b)
    click.echo(f"tokens: {b.cache.describe()}; secrets: {b.store.describe()}")
    _rate_lines(b, sorted({r.provider for r in rows}))


def _rate_lines(b: Broker, names: Sequence[str]) -> None:
    """What is left of each provider's rate budget (static limits; a learned block,
    if any)."""
    import time

    for name in names:
        budget = b.budget(name)
        parts = [f"{left} of {limit} left" for limit, left in budget.left()]
        blocked = budget.blocked() - time.time()
        if blocked > 0:
            parts.append(f"blocked for {_duration(blocked)} (the server said so)")
        if parts:
            click.echo(f"rate budget, {name}: {', '.join(parts)}; shared by {budget.shared}")


@cli.command()
@click.argument("provider")
@click.option("--account", default=None, help=ACCOUNT_HELP)
@click.option(
    "--max-wait",
    type=click.FloatRange(min=0, max=86400),
    default=None,
    help="The longest to wait, in seconds (default: [limits] max_wait); longer: exit 5.",
)
def wait(provider: str, account: str | None, max_wait: float | None) -> None:
    """Take one request from the rate budget, waiting if spent.

    For curl loops: `keyfob wait inaturalist && curl -H "$(keyfob header inaturalist)" ...`
    shares the budget with every Python worker.
    """
    waited = _broker_().budget(provider, account).take(max_wait=max_wait)
    if waited > 0:
        _say(f"{provider}: waited {waited:.1f} s for the rate budget")


@cli.command()
@click.argument("provider")
@click.option("--account", default=None, help=ACCOUNT_HELP)
def refresh(provider: str, account: str | None) -> None:
    """Renew the token now, the cheap way.

    The cached token is renewed (its refresh token, iNaturalist's kept OAuth
    token); without one, the provider's grant runs again.
    """
    t = _broker_().renew(provider, account=account)
    _say(f"{provider}: new token; {_expiry(t.expires)}")


@cli.command()
@click.argument("provider")
@click.option("--account", default=None, help=ACCOUNT_HELP)
@click.option("--revoke", is_flag=True, help="Also revoke the token at the server.")
def logout(provider: str, account: str | None, revoke: bool) -> None:
    """Forget cached tokens and stored secrets (and revoke)."""
    done = _accounts().logout(provider, account=account, revoke=revoke)
    if not done.forgot:
        _say(f"{provider}: nothing to log out of: no cached token and no stored secrets")
    else:
        revoked = "; the token was revoked at the server" if done.revoked else ""
        here = " here (revoking at the server failed)" if done.revoke_failed else ""
        _say(f"{provider}: logged out{here}{revoked}")
    if done.exported:
        _say(
            f"{provider}: {', '.join(done.exported)} still set in this shell: the next run "
            "uses them (unset them to log out fully)"
        )
    if done.revoke_failed is not None:
        raise done.revoke_failed  # exit 4, after the person is logged out here


@cli.command()
@click.option(
    "--keep",
    is_flag=True,
    help="Keep the throw-away folder and print its path (its local provider stops with the demo).",
)
def demo(keep: bool) -> None:
    """The life of a token, offline, against a local provider.

    keyfob starts the provider itself and works in a throw-away folder: your
    keyring and token cache are not touched.
    """
    from keyfob.demo import run

    run(keep=keep)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return f"keyfob: {level}{record.getMessage()}"


#: what KEYFOB_LOG may say
LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


def _setup_logging(debug: bool) -> None:
    """Log to stderr at KEYFOB_LOG's level; a level keyfob does not know is a ConfigError."""
    level_name = os.environ.get("KEYFOB_LOG", "").strip().lower() or "warning"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger("keyfob")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else LOG_LEVELS.get(level_name, logging.WARNING))
    root.propagate = False
    if level_name not in LOG_LEVELS:
        raise ConfigError(
            f"KEYFOB_LOG={level_name!r} is not one of {', '.join(LOG_LEVELS)}",
            hint="set KEYFOB_LOG=debug, info or warning, or unset it",
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    cut = args.index("--") if "--" in args else len(args)
    debug = "--debug" in args[:cut]
    if debug:
        args = [a for a in args[:cut] if a != "--debug"] + args[cut:]
    try:
        _setup_logging(debug)
        cli.main(args=args, prog_name="keyfob", standalone_mode=False)
    except KeyfobError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        _say(f"keyfob: error: {exc.one_line()}")
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return 2
    except (click.Abort, KeyboardInterrupt):  # click turns Ctrl-C into Abort
        _say("\nkeyfob: interrupted")
        return 130
    except Exception as exc:
        if debug:
            raise
        _say(f"keyfob: error: unexpected {type(exc).__name__} (run with --debug for details)")
        return 1
    return 0
