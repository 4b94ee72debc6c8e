"""check_dsn and shown_setting: a mistyped DSN stops start-up with a reason, never its key."""

from __future__ import annotations

import pytest
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings

from lookout_telemetry.errortracking import check_dsn
from lookout_telemetry.scrub import shown_setting

KEY = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("blank", ["", "   ", "\n"])
def test_blank_dsn_means_error_tracking_off(blank: str) -> None:
    assert check_dsn(blank) is None


def test_a_dsn_is_kept_as_given() -> None:
    dsn = f"http://{KEY}@bugsink:8000/1"
    assert check_dsn(f" {dsn} ") == dsn


@pytest.mark.parametrize(
    ("dsn", "reason"),
    [
        (f"https//{KEY}@bugsink:8000/1", "Unsupported scheme"),
        ("http://bugsink:8000/1", "Missing public key"),
        ("not-a-dsn", "Unsupported scheme"),
    ],
)
def test_a_bad_dsn_says_why_and_never_shows_the_key(dsn: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as caught:
        check_dsn(dsn)
    assert KEY not in str(caught.value)
    assert "<public key>@<host>/<project id>" in str(caught.value)


class _Settings(BaseSettings):
    sentry_dsn: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SENTRY_DSN", "X_SENTRY_DSN")
    )
    port: int = 1


def test_a_secret_setting_is_hidden_by_field_and_by_alias() -> None:
    raw = f"https//{KEY}@bugsink:8000/1"
    assert shown_setting(_Settings, "sentry_dsn", raw) == "<hidden>"
    assert shown_setting(_Settings, "SENTRY_DSN", raw) == "<hidden>"
    assert shown_setting(_Settings, "X_SENTRY_DSN", raw) == "<hidden>"


def test_other_settings_are_shown_scrubbed() -> None:
    assert shown_setting(_Settings, "port", "abc") == "'abc'"
    assert shown_setting(_Settings, "unknown_password", "hunter2") == "<hidden>"
