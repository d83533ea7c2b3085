"""The provider registry: built-ins, config.toml overrides and declarations, discovery."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from keyfob import config
from keyfob.config import Settings
from keyfob.errors import ConfigError, ProviderError
from keyfob.flow import HttpRequest, HttpResponse
from keyfob.provider import BUILTINS, Provider, oauth2, registry
from keyfob.testing import LocalProvider
from keyfob.transport import Transport


def settings(**providers: dict[str, Any]) -> Settings:
    return Settings(path="/cfg/config.toml", signature="test", providers=providers)


def checked(leaks: Any, exc: pytest.ExceptionInfo[BaseException]) -> str:
    leaks.add("exception message", str(exc.value))
    return str(exc.value)


def discovered(provider: Provider) -> Provider:
    flow = oauth2.resolve(provider)
    assert flow is not None
    transport = Transport(config.HttpSettings(connect_timeout=2, timeout=5, retries=0))
    try:
        result: Provider = transport.run(flow)
    finally:
        transport.close()
    return result


# --------------------------------------------------------------------------- built-ins
def test_builtins_are_present_without_any_config() -> None:
    known = registry(settings())
    assert {"inaturalist", "treesnap", "twitter"} <= set(known)
    assert all(known[name].builtin for name in ("inaturalist", "treesnap", "twitter"))


@pytest.mark.parametrize(
    ("name", "grant", "endpoint", "url"),
    [
        ("inaturalist", "password", "token_url", "https://www.inaturalist.org/oauth/token"),
        ("inaturalist", "password", "jwt_url", "https://www.inaturalist.org/users/api_token"),
        (
            "treesnap",
            "paste",
            "refresh_url",
            "https://treesnap.org/web-services/v1/refresh-tokens",
        ),
        ("twitter", "client_credentials", "token_url", "https://api.twitter.com/oauth2/token"),
        (
            "twitter",
            "client_credentials",
            "revoke_url",
            "https://api.twitter.com/oauth2/invalidate_token",
        ),
    ],
)
def test_builtins_have_their_documented_grant_and_endpoints(
    name: str, grant: str, endpoint: str, url: str
) -> None:
    provider = registry(settings())[name]
    assert provider.grant == grant
    assert getattr(provider, endpoint) == url


@pytest.mark.parametrize(
    ("name", "variables"),
    [
        (
            "inaturalist",
            {
                "username": "INAT_USERNAME",
                "password": "INAT_PASSWORD",
                "app_id": "INAT_APP_ID",
                "app_secret": "INAT_APP_SECRET",
            },
        ),
        ("treesnap", {"token": "TREESNAP_TOKEN"}),
        ("twitter", {"api_key": "TWITTER_API_KEY", "api_secret": "TWITTER_API_SECRET"}),
    ],
)
def test_builtin_secrets_are_read_from_their_documented_variables(
    name: str, variables: dict[str, str]
) -> None:
    provider = BUILTINS[name]
    assert {secret: provider.env_var(secret) for secret in variables} == variables
    assert set(provider.required) == set(variables)


#: the one exception: X's developer portal calls an OAuth 1.0a access token and its
#: secret TWITTER_ACCESS_TOKEN(_SECRET); keyfob's names stay those of every OAuth 1.0a
#: provider, `token` and `token_secret`
PORTAL_NAMES = {
    ("twitter-oauth1", "token"): "TWITTER_ACCESS_TOKEN",
    ("twitter-oauth1", "token_secret"): "TWITTER_ACCESS_TOKEN_SECRET",
}


@pytest.mark.parametrize("provider", list(BUILTINS.values()), ids=list(BUILTINS))
def test_a_secret_name_is_the_lower_case_end_of_its_variable(provider: Provider) -> None:
    for secret in provider.secrets:
        expected = PORTAL_NAMES.get(
            (provider.name, secret), f"{provider.env_prefix}_{secret.upper()}"
        )
        # gh's GH_TOKEN comes before GITHUB_TOKEN: each ends in the secret's name
        assert expected in provider.env_vars(secret)
        assert all(var.endswith(f"_{secret.upper()}") for var in provider.env_vars(secret))


def test_keyring_service_of_other_providers_is_keyfob_and_name() -> None:
    assert BUILTINS["twitter"].service() == "keyfob:twitter"
    assert BUILTINS["twitter"].service("bot") == "keyfob:twitter:bot"


# --------------------------------------------------------------------------- overrides
def test_config_overrides_an_endpoint_of_a_builtin_and_keeps_the_rest() -> None:
    known = registry(settings(inaturalist={"token_url": "http://127.0.0.1:8080/oauth/token"}))
    inat = known["inaturalist"]
    assert inat.token_url == "http://127.0.0.1:8080/oauth/token"
    assert inat.jwt_url == BUILTINS["inaturalist"].jwt_url
    assert inat.grant == "password"
    assert inat.env_var("app_secret") == "INAT_APP_SECRET"
    assert inat.builtin


def test_config_overrides_leeway_and_scope_of_a_builtin() -> None:
    twitter = registry(settings(twitter={"leeway": 5, "scope": "read"}))["twitter"]
    assert (twitter.leeway, twitter.scope) == (5.0, "read")


def test_grant_of_a_builtin_cannot_be_changed(no_secret_leaks: Any) -> None:
    with pytest.raises(ConfigError) as exc:
        registry(settings(twitter={"grant": "password"}))
    assert "twitter" in checked(no_secret_leaks, exc)


def test_overrides_do_not_change_the_builtin_table() -> None:
    registry(settings(twitter={"token_url": "http://127.0.0.1:1/oauth2/token"}))
    assert BUILTINS["twitter"].token_url == "https://api.twitter.com/oauth2/token"


# --------------------------------------------------------------------------- declarations
def test_config_declares_a_new_client_credentials_provider() -> None:
    table = {
        "token_url": "https://auth.example.com/token",
        "grant": "client_credentials",
        "env_prefix": "MYAPI",
        "scope": "read write",
    }
    myapi = registry(settings(myapi=table))["myapi"]
    assert (myapi.kind.name, myapi.grant, myapi.builtin) == ("oauth2", "client_credentials", False)
    assert myapi.token_url == "https://auth.example.com/token"
    assert myapi.scope == "read write"
    assert myapi.env_var("client_id") == "MYAPI_CLIENT_ID"
    assert myapi.env_var("client_secret") == "MYAPI_CLIENT_SECRET"
    assert set(myapi.required) == {"client_id", "client_secret"}


@pytest.mark.parametrize(
    ("grant", "required"),
    [
        ("client_credentials", {"client_id", "client_secret"}),
        ("password", {"client_id", "username", "password"}),
        ("refresh_token", {"client_id", "refresh_token"}),
    ],
)
def test_a_declared_provider_requires_what_its_grant_needs(grant: str, required: set[str]) -> None:
    table = {"token_url": "https://auth.example.com/token", "grant": grant}
    assert set(registry(settings(myapi=table))["myapi"].required) == required


def test_declared_provider_env_variables_follow_its_prefix() -> None:
    table = {"token_url": "https://auth.example.com/token", "env_prefix": "ACME"}
    acme = registry(settings(acme=table))["acme"]
    assert {name: acme.env_var(name) for name in acme.secrets} == {
        "client_id": "ACME_CLIENT_ID",
        "client_secret": "ACME_CLIENT_SECRET",
        "username": "ACME_USERNAME",
        "password": "ACME_PASSWORD",
        "refresh_token": "ACME_REFRESH_TOKEN",
        "token": "ACME_TOKEN",
    }


def test_declared_provider_without_env_prefix_takes_its_name_in_capitals() -> None:
    table = {"token_url": "https://auth.example.com/token"}
    assert registry(settings(**{"my-api": table}))["my-api"].env_var("client_id") == (
        "MY_API_CLIENT_ID"
    )


def test_declared_provider_defaults_to_client_credentials_with_basic_auth() -> None:
    myapi = registry(settings(myapi={"issuer": "https://auth.example.com"}))["myapi"]
    assert (myapi.grant, myapi.client_auth) == ("client_credentials", "client_secret_basic")


def test_config_file_is_read_into_the_registry(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "config.toml").write_text(
        "[providers.inaturalist]\n"
        'jwt_url = "http://127.0.0.1:8080/users/api_token"\n'
        "\n"
        "[providers.myapi]\n"
        'issuer = "https://auth.example.com"\n'
        'grant = "password"\n'
        'env_prefix = "MYAPI"\n'
    )
    known = registry(config.load())
    assert known["inaturalist"].jwt_url == "http://127.0.0.1:8080/users/api_token"
    assert known["myapi"].issuer == "https://auth.example.com"
    assert known["myapi"].env_var("password") == "MYAPI_PASSWORD"


# --------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("table", "near"),
    [
        (
            {"token_url": "https://auth.example.com/token", "token_uri": "https://x.example/t"},
            "token_url",
        ),
        ({"token_url": "https://auth.example.com/token", "scopes": "read"}, "scope"),
        ({"token_url": "https://auth.example.com/token", "secret": "not-shown-4321"}, None),
    ],
    ids=["typo", "plural", "secret"],
)
def test_unknown_setting_is_one_warning_with_the_nearest_known_name(
    table: dict[str, Any], near: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    unknown = (set(table) - {"token_url"}).pop()
    known = registry(settings(myapi=table))
    assert known["myapi"].token_url == "https://auth.example.com/token"
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert f"`{unknown}`" in warning and "[providers.myapi]" in warning
    assert "/cfg/config.toml" in warning
    if near:
        assert f"did you mean `{near}`?" in warning
    else:
        assert "token_url" in warning  # no near name: the known ones
    assert str(table[unknown]) not in warning


def test_unknown_setting_on_a_builtin_warns_and_keeps_the_builtin(
    caplog: pytest.LogCaptureFixture,
) -> None:
    known = registry(settings(twitter={"tokenurl": "https://api.twitter.com/oauth2/tokn"}))
    assert known["twitter"] == BUILTINS["twitter"]
    assert "did you mean `token_url`?" in caplog.text


@pytest.mark.parametrize(
    ("name", "builtin"),
    [
        ("inaturalst", "inaturalist"),
        ("inaturailst", "inaturalist"),
        ("treesnaps", "treesnap"),
        ("twiter", "twitter"),
    ],
)
def test_a_table_one_edit_from_a_builtin_without_endpoints_says_did_you_mean(
    name: str, builtin: str, caplog: pytest.LogCaptureFixture
) -> None:
    known = registry(settings(**{name: {"leeway": 30}}))
    assert name not in known
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert f"[providers.{name}]" in warning and f"did you mean {builtin}?" in warning


def test_a_table_one_edit_from_a_builtin_with_its_own_endpoint_is_a_new_provider(
    caplog: pytest.LogCaptureFixture,
) -> None:
    known = registry(settings(twiter={"token_url": "https://auth.example.com/token"}))
    assert known["twiter"].token_url == "https://auth.example.com/token"
    assert "did you mean" not in caplog.text


@pytest.mark.parametrize(
    ("first", "second"), [("a-b", "a_b"), ("a_b", "a.b"), ("my-api", "my_api")]
)
def test_two_providers_reading_the_same_variables_refuse_the_second(
    first: str, second: str, no_secret_leaks: Any
) -> None:
    table = {"token_url": "https://auth.example.com/token"}
    with pytest.raises(ConfigError) as exc:
        registry(settings(**{first: table, second: table}))
    text = checked(no_secret_leaks, exc)
    assert f"[providers.{second}]" in text and f"as {first}" in text
    assert "env_prefix" in exc.value.hint


def test_a_declared_provider_named_like_a_builtins_variables_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"INAT_.*inaturalist"):
        registry(settings(inat={"token_url": "https://auth.example.com/token"}))


def test_an_explicit_env_prefix_may_share_variables_on_purpose() -> None:
    table = {"token_url": "https://auth.example.com/token", "env_prefix": "A_B"}
    known = registry(settings(**{"a-b": table, "a_b": table}))
    assert known["a-b"].env_var("client_id") == known["a_b"].env_var("client_id")


@pytest.mark.parametrize("grant", ["implicit", "authorization-code", "PASSWORD", ""])
def test_unknown_grant_is_a_config_error(grant: str, no_secret_leaks: Any) -> None:
    with pytest.raises(ConfigError) as exc:
        registry(settings(myapi={"token_url": "https://auth.example.com/token", "grant": grant}))
    checked(no_secret_leaks, exc)


def test_unknown_client_auth_is_a_config_error() -> None:
    table = {"token_url": "https://auth.example.com/token", "client_auth": "private_key_jwt"}
    with pytest.raises(ConfigError):
        registry(settings(myapi=table))


def test_declared_provider_without_token_url_or_issuer_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        registry(settings(myapi={"grant": "client_credentials"}))


@pytest.mark.parametrize("key", ["token_url", "issuer", "revoke_url"])
def test_plain_http_to_a_public_host_is_a_config_error(key: str, no_secret_leaks: Any) -> None:
    table = {"token_url": "https://auth.example.com/token", key: "http://auth.example.com/x"}
    with pytest.raises(ConfigError) as exc:
        registry(settings(myapi=table))
    assert "http://" in checked(no_secret_leaks, exc)


def test_plain_http_override_of_a_builtin_to_a_public_host_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        registry(settings(inaturalist={"token_url": "http://www.inaturalist.org/oauth/token"}))


@pytest.mark.parametrize("leeway", [-1, "60", True, float("inf"), float("nan"), 1e300])
def test_leeway_must_be_non_negative_seconds(leeway: Any) -> None:
    with pytest.raises(ConfigError, match=r"/cfg/config.toml: \[providers.twitter\] leeway"):
        registry(settings(twitter={"leeway": leeway}))


@pytest.mark.parametrize("port", ["99999", "abc", "0", "-1"])
def test_an_endpoint_port_that_is_not_a_port_names_the_key_and_the_file(
    port: str, no_secret_leaks: Any
) -> None:
    table = {"token_url": f"https://auth.example.com:{port}/token"}
    with pytest.raises(ConfigError) as exc:
        registry(settings(myapi=table))
    text = checked(no_secret_leaks, exc)
    assert "/cfg/config.toml" in text and "[providers.myapi] token_url" in text
    assert "port" in text


@pytest.mark.parametrize("name", ["My API", "-x", "a/b", "ÜBER"])
def test_provider_names_must_be_simple(name: str) -> None:
    with pytest.raises(ConfigError):
        registry(settings(**{name: {"token_url": "https://auth.example.com/token"}}))


def test_lower_case_env_prefix_is_a_config_error() -> None:
    table = {"token_url": "https://auth.example.com/token", "env_prefix": "myapi"}
    with pytest.raises(ConfigError):
        registry(settings(myapi=table))


# --------------------------------------------------------------------------- discovery
def test_discovery_at_the_std_issuer_fills_the_endpoints(local: LocalProvider) -> None:
    provider = registry(settings(local={"issuer": f"{local.url}/std", "grant": "password"}))
    found = discovered(provider["local"])
    assert found.token_url == f"{local.url}/std/token"
    assert found.revoke_url == f"{local.url}/std/revoke"
    assert found.introspect_url == f"{local.url}/std/introspect"
    assert local.count("/std/.well-known/openid-configuration") == 1


def test_discovery_keeps_endpoints_the_config_gives(local: LocalProvider) -> None:
    table = {"issuer": f"{local.url}/std", "revoke_url": "http://127.0.0.1:1/mine"}
    found = discovered(registry(settings(local=table))["local"])
    assert found.revoke_url == "http://127.0.0.1:1/mine"
    assert found.token_url == f"{local.url}/std/token"


def test_no_discovery_when_token_url_is_given() -> None:
    table = {"issuer": "https://auth.example.com", "token_url": "https://auth.example.com/t"}
    assert oauth2.resolve(registry(settings(myapi=table))["myapi"]) is None


def test_discovery_document_for_another_issuer_is_a_provider_error(
    local: LocalProvider, no_secret_leaks: Any
) -> None:
    # the same server under another name: its document says issuer http://127.0.0.1:PORT/std
    other = local.url.replace("127.0.0.1", "localhost") + "/std"
    provider = registry(settings(local={"issuer": other}))["local"]
    with pytest.raises(ProviderError) as exc:
        discovered(provider)
    text = checked(no_secret_leaks, exc)
    assert f"names the issuer '{local.url}/std', not the configured {other}" in text


def test_issuer_without_a_discovery_document_is_a_provider_error(
    local: LocalProvider, no_secret_leaks: Any
) -> None:
    provider = registry(settings(local={"issuer": f"{local.url}/nowhere"}))["local"]
    with pytest.raises(ProviderError) as exc:
        discovered(provider)
    assert exc.value.status == 404
    checked(no_secret_leaks, exc)


def test_discovered_plain_http_endpoint_on_a_public_host_is_a_config_error(
    no_secret_leaks: Any,
) -> None:
    issuer = "https://auth.example.com"
    flow = oauth2.resolve(registry(settings(myapi={"issuer": issuer}))["myapi"])
    assert flow is not None
    request = next(flow)
    assert isinstance(request, HttpRequest)
    assert request.url == f"{issuer}/.well-known/openid-configuration"
    document = {"issuer": issuer, "token_endpoint": "http://auth.example.com/token"}
    with pytest.raises(ConfigError) as exc:
        flow.send(HttpResponse(200, {}, json.dumps(document).encode(), request.url))
    checked(no_secret_leaks, exc)
