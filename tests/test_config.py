"""config.toml and the environment, read into settings: every mistake names its fix.

A value of the wrong type or out of range is a ``ConfigError`` (exit 2) naming
the key and the file; an unknown section or key is one warning line with the
nearest known name, and the command goes on.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CliRun, Leaks, one_line_error
from keyfob import config
from keyfob.config import HTTP_RANGES, Settings, check_url
from keyfob.errors import ConfigError
from keyfob.testing import LocalProvider


def write_config(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(text)
    return path


def append_config(home: Path, text: str) -> None:
    with (home / "config.toml").open("a") as fh:
        fh.write("\n" + text)


def toml_value(value: object) -> str:
    """``value`` as TOML (the subset the strategies below make)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


# hypothesis's function-scoped-fixture check: each example rewrites the one file itself
PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
VALUES = st.one_of(
    st.floats(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12),
)


# --------------------------------------------------------------------------- [http]
@pytest.mark.parametrize("key", sorted(HTTP_RANGES))
@PROPERTY
@given(value=VALUES)
def test_any_http_value_is_settings_in_range_or_a_config_error(
    home: Path, key: str, value: object
) -> None:
    write_config(home, f"[http]\n{key} = {toml_value(value)}\n")
    try:
        loaded = config.load({})
    except ConfigError as exc:
        assert f"[http] {key}" in str(exc) and str(home / "config.toml") in str(exc)
        return
    number = getattr(loaded.http, key)
    low, high = HTTP_RANGES[key]
    assert math.isfinite(number) and low <= number <= high
    assert type(number) is (int if key == "retries" else float)


@PROPERTY
@given(value=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12))
def test_any_keyfob_timeout_is_a_timeout_in_range_or_a_config_error(home: Path, value: str) -> None:
    try:
        loaded = config.load({"KEYFOB_TIMEOUT": value})
    except ConfigError as exc:
        assert "KEYFOB_TIMEOUT" in str(exc)
        return
    assert 0 < loaded.http.timeout <= HTTP_RANGES["timeout"][1]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("retries", "inf"),
        ("retries", "nan"),
        ("retries", "1e9"),
        ("retries", "1000000000"),
        ("retries", "2.5"),
        ("retries", '"3"'),
        ("timeout", "inf"),
        ("timeout", "nan"),
        ("timeout", "1e300"),
        ("timeout", "0"),
        ("timeout", "true"),
        ("connect_timeout", "-1"),
        ("max_wait", "inf"),
    ],
)
def test_a_wrong_http_value_names_the_key_and_the_file(
    home: Path, key: str, value: str, no_secret_leaks: Leaks
) -> None:
    path = write_config(home, f"[http]\n{key} = {value}\n")
    with pytest.raises(ConfigError) as exc:
        config.load({})
    no_secret_leaks.add("exception message", exc.value.one_line())
    assert str(exc.value).startswith(f"{path}: [http] {key} must be ")
    assert str(path) in exc.value.hint


def test_http_values_in_range_are_read(home: Path) -> None:
    write_config(home, "[http]\nconnect_timeout = 2\ntimeout = 7.5\nretries = 0\nmax_wait = 0\n")
    http = config.load({}).http
    assert (http.connect_timeout, http.timeout, http.retries, http.max_wait) == (2, 7.5, 0, 0)


def test_keyfob_timeout_overrides_the_file(home: Path) -> None:
    write_config(home, "[http]\ntimeout = 7\n")
    assert config.load({"KEYFOB_TIMEOUT": "12.5"}).http.timeout == 12.5


@pytest.mark.parametrize("value", ["abc", "inf", "nan", "1e300", "0", "-3"])
def test_a_wrong_keyfob_timeout_names_the_variable(home: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"^KEYFOB_TIMEOUT must be"):
        config.load({"KEYFOB_TIMEOUT": value})


# --------------------------------------------------------------------------- unknown names
@pytest.mark.parametrize(
    ("text", "what", "near"),
    [
        ("[htp]\ntimeout = 3\n", "section [htp]", "did you mean `http`?"),
        ("[provider.myapi]\nscope = 'x'\n", "section [provider]", "did you mean `providers`?"),
        ("[http]\ntimout = 3\n", "key `timout` in [http]", "did you mean `timeout`?"),
        ("[http]\nretry = 3\n", "key `retry` in [http]", "did you mean `retries`?"),
        ("[cache]\nurls = 'x'\n", "key `urls` in [cache]", "did you mean `url`?"),
        (
            "timeout = 3\n",
            "key `timeout` outside a section",
            "did you mean `timeout` under [http]?",
        ),
    ],
)
def test_an_unknown_section_or_key_is_one_warning_with_the_nearest_name(
    home: Path, text: str, what: str, near: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_config(home, text)
    loaded = config.load({})
    assert loaded.http == config.HttpSettings()  # ignored, not half-read
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning == f"{path}: unknown {what}, ignored ({near})"


def test_an_unknown_key_without_a_near_name_lists_the_known_ones(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_config(home, "[http]\nproxy_server = 'http://127.0.0.1:3128'\n")
    config.load({})
    assert "known: connect_timeout, timeout, retries, max_wait" in caplog.text


@pytest.mark.parametrize(
    "text", ["http = 3\n", "cache = 'redis://127.0.0.1'\n", "[cache]\nurl = 6379\n"]
)
def test_a_section_or_value_of_the_wrong_type_names_the_file(home: Path, text: str) -> None:
    path = write_config(home, text)
    with pytest.raises(ConfigError, match=f"^{path}: "):
        config.load({})


# --------------------------------------------------------------------------- URLs
@PROPERTY
@given(port=st.text(max_size=8))
def test_any_port_is_a_checked_url_or_a_config_error(port: str) -> None:
    url = f"https://auth.example.com:{port}/token"
    try:
        assert check_url(url, "token_url") == url
    except ConfigError as exc:
        assert "token_url" in str(exc)
    config.safe_url(url)  # never raises: it is how errors show a URL


@pytest.mark.parametrize("port", ["99999", "abc", "0"])
def test_a_cache_url_whose_port_is_not_one_is_a_config_error(port: str) -> None:
    with pytest.raises(ConfigError, match="port"):
        Settings(path="/cfg/config.toml", signature="t", cache_url=f"redis://127.0.0.1:{port}/0")


def test_repr_of_settings_shows_no_redis_password_and_no_provider_values() -> None:
    s = Settings(
        path="/cfg/config.toml",
        signature="t",
        cache_url="redis://:hunter2-made-up@127.0.0.1:6379/0",
        providers={"myapi": {"secret": "made-up-in-the-wrong-place"}},
    )
    text = repr(s)
    assert "hunter2" not in text and "made-up-in-the-wrong-place" not in text
    assert "redis://127.0.0.1:6379/0" in text and "myapi" in text


# --------------------------------------------------------------------------- loopback
@pytest.mark.parametrize(
    "url",
    [
        "http://auth.localhost/token",
        "http://a.b.localhost:8080/token",
        "http://ip6-localhost/token",
        "http://localhost./token",
    ],
)
def test_names_that_resolve_through_dns_are_not_loopback(url: str, no_secret_leaks: Leaks) -> None:
    # *.localhost is answered by whatever resolver the machine has, which may be a
    # public address: plain http:// to it would carry secrets across the network.
    with pytest.raises(ConfigError) as exc:
        check_url(url, "token_url")
    no_secret_leaks.add("exception message", str(exc.value))
    assert "http://" in str(exc.value)


@pytest.mark.parametrize(
    "url", ["http://localhost/token", "http://127.0.0.1:1/t", "http://[::1]/t", "http://127.8.0.1/"]
)
def test_literal_loopback_and_localhost_itself_take_plain_http(url: str) -> None:
    assert check_url(url, "token_url") == url


# --------------------------------------------------------------------------- the command
@pytest.mark.parametrize(
    "text",
    [
        "[http]\nretries = inf\n",
        "[http]\nretries = 1e9\n",
        "[http]\ntimeout = nan\n",
        "[http]\ntimeout = 1e300\n",
        "[providers.myapi]\ntoken_url = 'http://127.0.0.1:99999/token'\n",
        "[providers.myapi]\ntoken_url = 'https://auth.example.com:abc/token'\n",
    ],
    ids=["retries-inf", "retries-1e9", "timeout-nan", "timeout-1e300", "port-99999", "port-abc"],
)
def test_a_wrong_setting_exits_2_with_one_line(
    configured: LocalProvider, home: Path, cli: CliRun, text: str
) -> None:
    append_config(home, text)
    done = cli("token", "twitter", timeout=20)
    assert done.returncode == 2
    assert str(home / "config.toml") in one_line_error(done.stderr, hint=True)
    assert configured.count("/oauth2/token") == 0


def test_an_unknown_key_warns_once_and_the_command_goes_on(
    configured: LocalProvider, home: Path, cli: CliRun
) -> None:
    append_config(home, "[http]\ntimout = 3\n")
    done = cli("token", "twitter")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"keyfob: warning: {home / 'config.toml'}: unknown key `timout` in [http], ignored "
        "(did you mean `timeout`?)"
    ]


def test_an_unknown_provider_says_did_you_mean(configured: LocalProvider, cli: CliRun) -> None:
    done = cli("token", "twiter")
    assert done.returncode == 2
    assert "did you mean twitter?" in one_line_error(done.stderr, hint=True)


def test_a_keyfob_timeout_that_is_not_a_number_exits_2(
    configured: LocalProvider, cli: CliRun
) -> None:
    done = cli("token", "twitter", env={"KEYFOB_TIMEOUT": "abc"})
    assert done.returncode == 2
    assert "KEYFOB_TIMEOUT" in one_line_error(done.stderr, hint=True)


# --------------------------------------------------------------------------- the environment
@pytest.mark.parametrize("value", ["verbose", "WARN", "error", "3"])
def test_an_unknown_keyfob_log_names_the_accepted_levels(
    configured: LocalProvider, cli: CliRun, value: str
) -> None:
    done = cli("token", "twitter", env={"KEYFOB_LOG": value})
    assert done.returncode == 2
    line = one_line_error(done.stderr, hint=True)
    assert "KEYFOB_LOG" in line and "debug, info, warning" in line
    assert configured.count("/oauth2/token") == 0


def test_an_unknown_keyfob_log_is_refused_even_with_a_cached_token(
    configured: LocalProvider, cli: CliRun
) -> None:
    assert cli("token", "twitter").returncode == 0
    done = cli("token", "twitter", env={"KEYFOB_LOG": "verbose"})
    assert done.returncode == 2 and done.stdout == ""


@pytest.mark.parametrize("value", ["Info", " debug ", ""])
def test_keyfob_log_levels_are_read_in_any_case(
    configured: LocalProvider, cli: CliRun, value: str
) -> None:
    done = cli("token", "twitter", env={"KEYFOB_LOG": value})
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("KEYFOB_KEYRING", "fiel", "file, keyring"),
        ("KEYFOB_KEYRING", "none", "file, keyring"),
        ("KEYFOB_KEYRING_TIMEOUT", "abc", "above 0"),
        ("KEYFOB_KEYRING_TIMEOUT", "inf", "above 0"),
        ("KEYFOB_KEYRING_TIMEOUT", "nan", "above 0"),
        ("KEYFOB_KEYRING_TIMEOUT", "0", "above 0"),
    ],
)
def test_a_keyring_setting_keyfob_cannot_use_exits_2_naming_what_fits(
    configured: LocalProvider, cli: CliRun, name: str, value: str, accepted: str
) -> None:
    done = cli("status", env={name: value})
    assert done.returncode == 2
    line = one_line_error(done.stderr, hint=True)
    assert name in line and accepted in line


@pytest.mark.parametrize("var", ["A=B", "1TOKEN", "MY-TOKEN", ""])
def test_exec_env_that_is_not_a_variable_name_exits_2_before_any_token(
    configured: LocalProvider, cli: CliRun, var: str
) -> None:
    done = cli("exec", "twitter", "--env", var, "--", "true")
    assert done.returncode == 2
    assert "--env" in one_line_error(done.stderr, hint=True)
    assert configured.count("/oauth2/token") == 0


# --------------------------------------------------------------------------- [cache] url
def test_a_redis_url_without_the_redis_package_is_one_line_naming_the_extra(
    configured: LocalProvider, cli: CliRun, tmp_path: Path, no_secret_leaks: Leaks
) -> None:
    no_secret_leaks.plant("made-up-redis-password")
    # A `redis` that cannot be imported stands first on the path, as on a machine
    # where keyfob was installed without its [redis] extra.
    (tmp_path / "no-redis" / "redis").mkdir(parents=True)
    (tmp_path / "no-redis" / "redis" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'redis'\", name='redis')\n"
    )
    env = {
        "PYTHONPATH": str(tmp_path / "no-redis"),
        "KEYFOB_CACHE_URL": "redis://:made-up-redis-password@127.0.0.1:6399/0",
    }
    done = cli("token", "twitter", env=env)
    assert done.returncode == 0, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("keyfob: warning: ") and "pip install 'keyfob[redis]'" in line
    assert "made-up-redis-password" not in line
    status = cli("status", "twitter", env=env)
    assert status.returncode == 0 and len(status.stderr.splitlines()) == 1


# --------------------------------------------------------------------------- help
def test_every_option_of_every_command_has_help_text() -> None:
    from keyfob.cli import cli as group

    commands = [group, *group.commands.values()]
    missing = [
        f"{command.name} {param.opts[0]}"
        for command in commands
        for param in command.params
        if isinstance(param, click.Option) and not (param.help or "").strip()
    ]
    assert missing == []


def test_top_level_help_lists_every_command_without_cutting_a_sentence(cli: CliRun) -> None:
    from keyfob.cli import cli as group

    done = cli("--help", env={"COLUMNS": "80"})
    assert done.returncode == 0
    listed = done.stdout.split("Commands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in listed] == sorted(group.commands)
    for line in listed:
        assert not line.endswith("..."), line
        assert line.rstrip().endswith((".", ")")), line
    assert "Exit status:" in done.stdout and "KEYFOB_LOG" in done.stdout
