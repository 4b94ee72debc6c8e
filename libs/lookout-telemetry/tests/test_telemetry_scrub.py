"""Tests of the scrubber for secrets and personal data."""

from __future__ import annotations

import copy

import pytest

from lookout_telemetry.scrub import (
    CARD,
    REDACTED,
    SENSITIVE_KEYS,
    is_sensitive_key,
    register_secret,
    scrub,
    scrub_text,
)

CARD_CASES = [
    ("4111 1111 1111 1111", CARD, "visa-spaces"),
    ("4111-1111-1111-1111", CARD, "visa-dashes"),
    ("4111111111111111", CARD, "visa-plain"),
    ("5555 5555 5555 4444", CARD, "mastercard"),
    ("3782 822463 10005", CARD, "amex-4-6-5"),
    ("6011111111111117", CARD, "discover"),
    ("paid with 4111 1111 1111 1111.", f"paid with {CARD}.", "in-sentence"),
    ("card=4111111111111111&x=1", f"card={REDACTED}&x=1", "as-query-value"),
    ('{"number": "4111111111111111"}', f'{{"number": "{CARD}"}}', "in-json-text"),
    ("4111 1111 1111 1111 2026", f"{CARD} 2026", "followed-by-year"),
    ("exp 12 4111 1111 1111 1111", f"exp 12 {CARD}", "after-short-number"),
]

LEFT_ALONE = [
    ("order 4111111111111112 shipped", "16-digit-not-luhn"),
    ("order 1234567812345678", "order-id"),
    ("at 1700000000004 ms", "luhn-valid-epoch-ms"),
    ("took 1700000000.123456 s", "epoch-seconds"),
    ("id 4111111111111111abc", "glued-to-letters"),
    ("trace 4bf92f3577b34da6a3ce929d0e0e4736", "trace-id"),
    ("call +1 555-123-4567", "phone-number"),
    ("at 2024-01-15 10:20:30", "date-time"),
    ("the number 41111111111111111111111", "too-long"),
    ("Basic plan chosen; basic information", "word-basic"),
    ("passengers=3 keyboard: qwerty monkey=1", "names-containing-hints"),
    ("GET https://example.com/a?page=2&sort=name", "plain-url"),
    ("user=bob role: admin", "plain-pairs"),
    ("", "empty"),
]

TEXT_CASES = [
    ("Bearer eyJhbGciOi.payload.sig", f"Bearer {REDACTED}", "bearer"),
    ("auth failed for bearer abc123", f"auth failed for bearer {REDACTED}", "bearer-lowercase"),
    ("Authorization: Bearer abc123", f"Authorization: {REDACTED}", "authorization-header"),
    ("sent Basic dXNlcjpwYXNz now", f"sent Basic {REDACTED} now", "basic"),
    (
        "GET /login?user=bob&password=hunter2&token=xyz",
        f"GET /login?user=bob&password={REDACTED}&token={REDACTED}",
        "query-string",
    ),
    ("username=bob&passwd=hunter2", f"username=bob&passwd={REDACTED}", "form-body"),
    (
        '{"username": "bob", "password": "hunter2", "n": 1}',
        f'{{"username": "bob", "password": "{REDACTED}", "n": 1}}',
        "json-text",
    ),
    ('{"password": null}', f'{{"password": "{REDACTED}"}}', "json-null"),
    (
        '{\\"new_password\\": \\"hunter2\\"}',
        f'{{\\"new_password\\": \\"{REDACTED}\\"}}',
        "escaped-json",
    ),
    ("'api_key': 'k-123'", f"'api_key': '{REDACTED}'", "python-repr"),
    ("X-Fault-Token: abcdef", f"X-Fault-Token: {REDACTED}", "fault-token-header"),
    ("Cookie: sid=abc; theme=dark", f"Cookie: {REDACTED}", "cookie-header"),
    (
        "postgresql+asyncpg://shop:s3cret@db:5432/shop",
        f"postgresql+asyncpg://shop:{REDACTED}@db:5432/shop",
        "url-password",
    ),
    (
        "redis://:s3cret@redis:6379/0",
        f"redis://:{REDACTED}@redis:6379/0",
        "url-password-without-user",
    ),
    (
        "SENTRY_DSN=http://2e85b3bb328da32f8e989dd0b79040b7@bugsink:8000/1",
        f"SENTRY_DSN=http://{REDACTED}@bugsink:8000/1",
        "sentry-dsn-key",
    ),
    (
        "X-Sentry-Auth: Sentry sentry_key=2e85b3bb328da32f8e989dd0b79040b7, sentry_version=7",
        f"X-Sentry-Auth: Sentry sentry_key={REDACTED}, sentry_version=7",
        "sentry-auth-header",
    ),
    ("Authorization: ApiKey k-123456", f"Authorization: {REDACTED}", "authorization-apikey"),
    (
        "proxy-authorization: SSWS 00abc-def\r\nHost: x",
        f"proxy-authorization: {REDACTED}\r\nHost: x",
        "proxy-authorization-other-scheme",
    ),
    ('"data": "password=x"', f'"data": "password={REDACTED}"', "fragment-inside-value"),
    ("apiKey=zzz db.password=abc", f"apiKey={REDACTED} db.password={REDACTED}", "camel-dotted"),
    ("Session = abc", f"Session = {REDACTED}", "spaces-around-equals"),
]

KEY_CASES = [
    ("password", True),
    ("Authorization", True),
    ("X-Fault-Token", True),
    ("x_api_key", True),
    ("new_password", True),
    ("newPassword", True),
    ("password_confirmation", True),
    ("refresh_token", True),
    ("csrf_token", True),
    ("client_secret", True),
    ("Set-Cookie", True),
    ("http.request.header.authorization", True),
    ("CVV", True),
    ("pan", True),
    # sentry-sdk sends a frame's local variables as reprs: a header name in a pair is quoted
    ("b'authorization'", True),
    ("'X-Fault-Token'", True),
    ("'request_id'", False),
    ("user_id", False),
    ("request_id", False),
    ("path", False),
    ("status", False),
    ("token_count", False),
    ("company", False),
    ("cache_key", False),
    ("message", False),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[:2] for c in CARD_CASES], ids=[c[2] for c in CARD_CASES]
)
def test_card_numbers_are_replaced(text: str, expected: str) -> None:
    """A Luhn-valid card number, with or without separators, becomes [CARD]."""
    assert scrub_text(text) == expected


@pytest.mark.parametrize("text", [c[0] for c in LEFT_ALONE], ids=[c[1] for c in LEFT_ALONE])
def test_harmless_text_is_left_alone(text: str) -> None:
    """Numbers that are not card numbers and text without secrets come back unchanged."""
    assert scrub_text(text) == text


@pytest.mark.parametrize(
    ("text", "expected"), [c[:2] for c in TEXT_CASES], ids=[c[2] for c in TEXT_CASES]
)
def test_credentials_in_text_are_redacted(text: str, expected: str) -> None:
    """Credentials and secret key/value fragments in free text lose their values."""
    assert scrub_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [c[0] for c in CARD_CASES + TEXT_CASES],
    ids=[c[2] for c in CARD_CASES + TEXT_CASES],
)
def test_scrubbing_twice_changes_nothing(text: str) -> None:
    """Scrubbing already scrubbed text leaves it as it is."""
    once = scrub_text(text)
    assert scrub_text(once) == once


@pytest.mark.parametrize(("name", "expected"), KEY_CASES, ids=[c[0] for c in KEY_CASES])
def test_sensitive_key_names(name: str, expected: bool) -> None:
    """Key names are matched case-insensitively, with dashes, suffixes and dotted prefixes."""
    assert is_sensitive_key(name) is expected


@pytest.mark.parametrize("name", sorted(SENSITIVE_KEYS))
def test_every_sensitive_name_is_redacted_in_text(name: str) -> None:
    """Each sensitive name is caught as a name=value fragment in free text too."""
    assert scrub_text(f"{name}=hunter2") == f"{name}={REDACTED}"


NESTED = {
    "method": "POST",
    "headers": {"Authorization": "Bearer abc", "X-Fault-Token": "t0k3n", "Accept": "*/*"},
    "body": {"user": {"new_password": "hunter2", "email": "a@example.com"}},
    "cookies": {"sid": "abc"},
    "pairs": [("Cookie", "sid=abc"), ["Accept", "text/html"]],
    "items": [{"card": {"number": "4111111111111111"}}, "4111 1111 1111 1111", 3, None],
    "note": "retry with token=abc",
}
NESTED_SCRUBBED = {
    "method": "POST",
    "headers": {"Authorization": REDACTED, "X-Fault-Token": REDACTED, "Accept": "*/*"},
    "body": {"user": {"new_password": REDACTED, "email": "a@example.com"}},
    "cookies": REDACTED,
    "pairs": [("Cookie", REDACTED), ["Accept", "text/html"]],
    "items": [{"card": REDACTED}, CARD, 3, None],
    "note": f"retry with token={REDACTED}",
}


def test_nested_values_are_scrubbed() -> None:
    """Sensitive keys at any depth, in any case, get REDACTED; strings get text rules."""
    assert scrub(NESTED) == NESTED_SCRUBBED


def test_input_is_not_mutated() -> None:
    """scrub returns a copy and leaves its input exactly as it was."""
    original = copy.deepcopy(NESTED)
    scrub(NESTED)
    assert original == NESTED


@pytest.mark.parametrize(
    "value",
    [42, 1.5, None, True, b"password=x", object()],
    ids=["int", "float", "none", "bool", "bytes", "object"],
)
def test_other_values_pass_through(value: object) -> None:
    """Values that are not containers or strings are returned as they are."""
    assert scrub(value) is value


def test_header_pairs_as_sentry_sends_frame_variables_are_redacted() -> None:
    """ASGI header pairs in a frame's variables (reprs of bytes) lose their values."""
    headers = [["b'authorization'", "b'ApiKey k-123456'"], ["'x-fault-token'", "'tok-1'"]]
    assert scrub({"scope": {"headers": headers}}) == {
        "scope": {
            "headers": [["b'authorization'", REDACTED], ["'x-fault-token'", REDACTED]],
        }
    }


def test_tuples_stay_tuples() -> None:
    """A tuple comes back as a tuple, scrubbed item by item."""
    assert scrub(("a", "Bearer x1")) == ("a", f"Bearer {REDACTED}")


def test_reference_cycle_terminates() -> None:
    """A dict that contains itself is scrubbed without endless recursion."""
    looped: dict[str, object] = {"password": "x"}
    looped["self"] = looped
    scrubbed = scrub(looped)
    assert isinstance(scrubbed, dict)
    assert scrubbed["password"] == REDACTED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Auth(token=b'abc-secret-1')", f"Auth(token={REDACTED})"),
        ('Auth(password=rb"abc-secret-1")', f"Auth(password={REDACTED})"),
        (
            "post https://hooks.slack.com/services/T0/B0/XYZ failed",
            f"post https://hooks.slack.com/services/{REDACTED} failed",
        ),
        (
            "https://discord.com/api/webhooks/123/abcDEF",
            f"https://discord.com/api/webhooks/{REDACTED}",
        ),
        ("routing_key=R0UT1NGKEY", f"routing_key={REDACTED}"),
    ],
    ids=["bytes-repr", "raw-bytes-repr", "slack-webhook", "discord-webhook", "routing-key"],
)
def test_relay_and_repr_secrets_are_scrubbed(text: str, expected: str) -> None:
    """Reprs with bytes literals, chat webhook URLs and routing keys lose their secret."""
    assert scrub_text(text) == expected
    assert scrub_text(expected) == expected


def test_registered_secret_is_replaced_anywhere() -> None:
    """A value registered with register_secret is replaced in any text, even without a key."""
    register_secret("Zq9-registered-value")
    assert scrub_text("login said: Zq9-registered-value is wrong") == (
        f"login said: {REDACTED} is wrong"
    )
    assert scrub({"note": "x Zq9-registered-value"}) == {"note": f"x {REDACTED}"}
