"""Test helpers: a local emulator of every provider keyfob supports (standard library only).

Usage::

    from keyfob.testing import LocalProvider

    with LocalProvider() as provider:
        ...  # provider.url, provider.config_toml(), provider.environ()
"""

from __future__ import annotations

from keyfob.testing.server import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_GITHUB_APP_CLIENT_ID,
    DEMO_GITHUB_APP_CLIENT_SECRET,
    DEMO_GITHUB_LOGIN,
    DEMO_GITHUB_OAUTH_CLIENT_ID,
    DEMO_GITHUB_OAUTH_CLIENT_SECRET,
    DEMO_INAT_APP_ID,
    DEMO_INAT_APP_SECRET,
    DEMO_INAT_PASSWORD,
    DEMO_INAT_USERNAME,
    DEMO_OAUTH1_CONSUMER_KEY,
    DEMO_OAUTH1_CONSUMER_SECRET,
    DEMO_PASSWORD,
    DEMO_TREESNAP_USER,
    DEMO_TWITTER_API_KEY,
    DEMO_TWITTER_API_SECRET,
    DEMO_TWITTER_CLIENT_ID,
    DEMO_TWITTER_CLIENT_SECRET,
    DEMO_USERNAME,
    GARBAGE_KINDS,
    LocalProvider,
    worst_window,
)

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_GITHUB_APP_CLIENT_ID",
    "DEMO_GITHUB_APP_CLIENT_SECRET",
    "DEMO_GITHUB_LOGIN",
    "DEMO_GITHUB_OAUTH_CLIENT_ID",
    "DEMO_GITHUB_OAUTH_CLIENT_SECRET",
    "DEMO_INAT_APP_ID",
    "DEMO_INAT_APP_SECRET",
    "DEMO_INAT_PASSWORD",
    "DEMO_INAT_USERNAME",
    "DEMO_OAUTH1_CONSUMER_KEY",
    "DEMO_OAUTH1_CONSUMER_SECRET",
    "DEMO_PASSWORD",
    "DEMO_TREESNAP_USER",
    "DEMO_TWITTER_API_KEY",
    "DEMO_TWITTER_API_SECRET",
    "DEMO_TWITTER_CLIENT_ID",
    "DEMO_TWITTER_CLIENT_SECRET",
    "DEMO_USERNAME",
    "GARBAGE_KINDS",
    "LocalProvider",
    "worst_window",
]
