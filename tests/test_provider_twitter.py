"""Twitter/X: the provider contract, then its quirks (app-only bearer tokens)."""

from __future__ import annotations

from provider_contract import Case, ProviderContract

WRONG_SECRET = "wrong-api-secret-0123456789"


class TestTwitter(ProviderContract):
    case = Case(
        name="twitter",
        variables=("TWITTER_API_KEY", "TWITTER_API_SECRET"),
        api="/2/tweets/search/recent",
        cold={"/oauth2/token": 1},
        renew={"/oauth2/token": 1},  # no refresh: the client-credentials grant again
        grant={"/oauth2/token": 1},
        revoke={"/oauth2/invalidate_token": 1},
        wrong=lambda local: {"TWITTER_API_SECRET": WRONG_SECRET},
    )
