"""``Token``: the one lifecycle answer (``state``), its expiry, and a repr without secrets."""

from __future__ import annotations

import json
from datetime import UTC, timedelta

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from keyfob.provider.treesnap import REFRESH_RATIO
from keyfob.token import DEFAULT_LEEWAY, Token, TokenState

# The autouse secret scan is function-scoped; it only collects, so sharing it is fine.
SETTINGS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)

ISSUED = 1_700_000_000.0
HOUR = 3600.0
YEAR = 365 * 24 * HOUR

FRESH, STALE, EXPIRED = TokenState.FRESH, TokenState.STALE, TokenState.EXPIRED


def hour_token() -> Token:
    return Token("access-abc", expires=ISSUED + HOUR, issued=ISSUED)


# ------------------------------------------------------------------------- state at the boundaries
@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (ISSUED, FRESH),
        (ISSUED + HOUR - 60.001, FRESH),
        (ISSUED + HOUR - 60, STALE),
        (ISSUED + HOUR - 0.001, STALE),
        (ISSUED + HOUR, EXPIRED),
        (ISSUED + 2 * HOUR, EXPIRED),
    ],
)
def test_state_with_leeway_60_changes_at_expiry_minus_60_and_at_expiry(
    now: float, expected: TokenState
) -> None:
    assert hour_token().state(now=now, leeway=60) is expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (ISSUED + HOUR - 300.001, FRESH),
        (ISSUED + HOUR - 300, STALE),
        (ISSUED + HOUR, EXPIRED),
    ],
)
def test_state_honours_an_explicit_leeway(now: float, expected: TokenState) -> None:
    assert hour_token().state(now=now, leeway=300) is expected


def test_state_without_leeway_uses_the_default_leeway() -> None:
    token = hour_token()
    assert token.state(now=ISSUED + HOUR - DEFAULT_LEEWAY - 0.001) is FRESH
    assert token.state(now=ISSUED + HOUR - DEFAULT_LEEWAY) is STALE


def test_state_with_zero_leeway_is_fresh_until_the_expiry_itself() -> None:
    token = hour_token()
    assert token.state(now=ISSUED + HOUR - 0.001, leeway=0) is FRESH
    assert token.state(now=ISSUED + HOUR, leeway=0) is EXPIRED


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (ISSUED, FRESH),
        (ISSUED + 4.999, FRESH),
        (ISSUED + 5, STALE),
        (ISSUED + 9.999, STALE),
        (ISSUED + 10, EXPIRED),
    ],
)
def test_leeway_is_capped_at_half_of_a_short_lifetime(now: float, expected: TokenState) -> None:
    # a 10-second token with a 60-second leeway is not stale the moment it arrives
    token = Token("short", expires=ISSUED + 10, issued=ISSUED)
    assert token.state(now=now, leeway=60) is expected


def test_leeway_of_a_token_without_issue_time_is_not_capped() -> None:
    token = Token("short", expires=ISSUED + 10)
    assert token.state(now=ISSUED, leeway=60) is STALE


@pytest.mark.parametrize(
    ("left", "expected"),
    [
        (YEAR * 0.1 + 1, FRESH),
        (YEAR * 0.1, STALE),
        (YEAR * 0.1 - 1, STALE),
        (0, EXPIRED),
    ],
)
def test_refresh_ratio_makes_a_token_stale_when_less_than_a_tenth_is_left(
    left: float, expected: TokenState
) -> None:
    token = Token("year", expires=ISSUED + YEAR, issued=ISSUED, refresh_ratio=0.1)
    assert token.state(now=ISSUED + YEAR - left, leeway=60) is expected


def test_treesnap_refresh_ratio_is_a_tenth() -> None:
    assert REFRESH_RATIO == 0.1


def test_refresh_ratio_zero_leaves_a_long_token_fresh_until_the_leeway() -> None:
    token = Token("year", expires=ISSUED + YEAR, issued=ISSUED)
    assert token.state(now=ISSUED + YEAR - 61, leeway=60) is FRESH


@pytest.mark.parametrize("now", [0.0, ISSUED, 1e12])
@pytest.mark.parametrize("leeway", [None, 0.0, 60.0, 1e9])
def test_token_without_expiry_is_always_fresh(now: float, leeway: float | None) -> None:
    assert Token("forever").state(now=now, leeway=leeway) is FRESH


@SETTINGS
@given(
    lifetime=st.floats(min_value=0.001, max_value=10 * YEAR),
    leeway=st.one_of(st.none(), st.floats(min_value=0, max_value=10 * YEAR)),
    ratio=st.sampled_from([0.0, 0.1, 0.5]),
    offset=st.floats(min_value=-YEAR, max_value=11 * YEAR),
)
def test_state_only_moves_forward_fresh_stale_expired(
    lifetime: float, leeway: float | None, ratio: float, offset: float
) -> None:
    token = Token("t", expires=ISSUED + lifetime, issued=ISSUED, refresh_ratio=ratio)
    order = [FRESH, STALE, EXPIRED]
    earlier = token.state(now=ISSUED + offset, leeway=leeway)
    later = token.state(now=ISSUED + offset + 1, leeway=leeway)
    assert order.index(earlier) <= order.index(later)
    assert token.state(now=ISSUED, leeway=leeway) is FRESH


# --------------------------------------------------------------------------- expires_at
def test_expires_at_is_an_aware_utc_datetime() -> None:
    at = hour_token().expires_at
    assert at is not None
    assert at.tzinfo is not None
    assert at.utcoffset() == timedelta(0)
    assert at.tzinfo == UTC
    assert at.timestamp() == ISSUED + HOUR


def test_expires_at_is_none_for_a_token_that_does_not_expire() -> None:
    assert Token("forever").expires_at is None


# --------------------------------------------------------------------------- authorization
def test_authorization_is_the_bearer_header_value() -> None:
    assert Token("abc").authorization == "Bearer abc"


def test_lower_case_bearer_is_normalised() -> None:
    assert Token("abc", "bearer").authorization == "Bearer abc"


# --------------------------------------------------------------------------- repr hides secrets
secret_text = st.text(min_size=1)


@SETTINGS
@given(access=secret_text, refresh=secret_text)
def test_repr_does_not_depend_on_the_token_values(access: str, refresh: str) -> None:
    token = Token(access, expires=ISSUED + HOUR, issued=ISSUED, refresh_token=refresh, scope="read")
    other = Token("x", expires=ISSUED + HOUR, issued=ISSUED, refresh_token="y", scope="read")
    assert repr(token) == repr(other)
    assert str(token) == str(other)


@SETTINGS
@given(access=st.text(min_size=6), refresh=st.text(min_size=6))
def test_repr_and_str_never_contain_access_or_refresh_token(access: str, refresh: str) -> None:
    baseline = repr(Token("x", refresh_token="y", expires=ISSUED))
    # a value that is part of the fixed wording (say "Token ") proves nothing
    assume(access not in baseline and refresh not in baseline)
    token = Token(access, refresh_token=refresh, expires=ISSUED)
    for shown in (repr(token), str(token), f"{token}", repr([token])):
        assert access not in shown
        assert refresh not in shown


def test_repr_says_a_refresh_token_exists_without_showing_it() -> None:
    shown = repr(Token("access-secret-1", refresh_token="refresh-secret-1"))
    assert "refresh_token=<hidden>" in shown
    assert "access-secret-1" not in shown
    assert "refresh-secret-1" not in shown


# --------------------------------------------------------------------------- to_dict / from_dict
finite = st.floats(min_value=0, max_value=1e11, allow_nan=False, allow_infinity=False)
tokens = st.builds(
    Token,
    st.text(min_size=1),
    st.sampled_from(["Bearer", "MAC", "DPoP"]),
    expires=st.none() | finite,
    issued=st.none() | finite,
    refresh_token=st.none() | st.text(min_size=1),
    refresh_expires=st.none() | finite,
    scope=st.none() | st.text(),
    refresh_ratio=st.sampled_from([0.0, 0.1]) | st.floats(min_value=0, max_value=1),
)


@SETTINGS
@given(token=tokens)
def test_from_dict_of_to_dict_is_the_same_token(token: Token) -> None:
    assert Token.from_dict(token.to_dict()) == token


@SETTINGS
@given(token=tokens)
def test_to_dict_survives_json(token: Token) -> None:
    again = Token.from_dict(json.loads(json.dumps(token.to_dict())))
    assert again == token
    assert again.state(now=ISSUED, leeway=60) is token.state(now=ISSUED, leeway=60)


def test_tokens_with_different_access_tokens_are_not_equal() -> None:
    assert Token("a", expires=ISSUED) != Token("b", expires=ISSUED)
