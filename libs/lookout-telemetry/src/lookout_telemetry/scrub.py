"""The one scrubber for secrets and personal data, for log records and error events alike.

``scrub(value)`` walks dicts, lists, tuples and strings and returns a scrubbed copy (its
input is never changed):

* a dict key with a sensitive name (``password``, ``Authorization``, ``X-Fault-Token``,
  ``new_password``, ``http.request.header.cookie``...; see ``is_sensitive_key``) gets
  ``REDACTED`` as its value, whatever the value was; so does the second item of a
  ``(name, value)`` pair inside a list or tuple (headers as sentry-sdk sends them);
* every string goes through ``scrub_text``: card numbers become ``[CARD]``, ``Bearer``
  and ``Basic`` credentials, ``password=...``-style fragments (query strings, form bodies,
  JSON text, header dumps), ``Cookie:`` headers, the password of a ``scheme://user:pw@``
  URL, the key of a Sentry DSN (``http://<key>@host/1``), the secret path of a Slack or
  Discord webhook URL and every value registered with ``register_secret`` (secrets a
  process read from its environment or files) become ``[REDACTED]``.

A card number is 13 to 19 digits, optionally split by single spaces or dashes, that starts
with 2 to 6 (the issuer ranges of Visa, Mastercard, Amex, Discover, JCB, UnionPay, Maestro)
and passes the Luhn check, so order ids, epoch timestamps (they start with 1) and most other
long numbers are left alone.

Scrubbing is a fixed point (scrubbing a scrubbed value changes nothing), and cheap for the
common string: each rule runs only when a quick substring test says it could match.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

__all__ = [
    "CARD",
    "KNOWN_SECRETS",
    "REDACTED",
    "SENSITIVE_KEYS",
    "SecretValues",
    "is_sensitive_key",
    "register_secret",
    "scrub",
    "scrub_text",
    "shown_setting",
]

#: What the value of a secret is replaced with.
REDACTED = "[REDACTED]"
#: What a card number inside a string is replaced with.
CARD = "[CARD]"

#: Normalised names (lowercase, ``-`` and spaces as ``_``, camelCase split) whose values are
#: always redacted. Names ending in one of ``_SENSITIVE_SUFFIXES`` or starting with
#: ``password`` are redacted too.
SENSITIVE_KEYS = frozenset(
    {
        # passwords and generic secrets
        "password",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "secret_key",
        "private_key",
        "access_key",
        "credential",
        "credentials",
        # tokens and API keys
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "auth_token",
        "api_token",
        "api_key",
        "apikey",
        "api_secret",
        "jwt",
        "otp",
        "csrf",
        "csrftoken",
        "x_api_key",
        "x_auth_token",
        "x_fault_token",
        # a Sentry DSN's public key, as sentry-sdk sends it in X-Sentry-Auth
        "sentry_key",
        # alert delivery (the webhook relay): a PagerDuty routing key, a Slack or Teams
        # webhook URL and an HMAC signature each let their holder post or forge alerts
        "routing_key",
        "webhook_url",
        "signature",
        # HTTP credentials and sessions
        "auth",
        "authorization",
        "proxy_authorization",
        "cookie",
        "cookies",
        "set_cookie",
        "session",
        "sessionid",
        "session_id",
        # payment cards and other personal identifiers
        "card",
        "card_number",
        "cardnumber",
        "credit_card",
        "creditcard",
        "pan",
        "cvv",
        "cvv2",
        "cvc",
        "security_code",
        "iban",
        "ssn",
    }
)
_SENSITIVE_SUFFIXES = (
    "_password",
    "_passwd",
    "_pwd",
    "_token",
    "_secret",
    "_api_key",
    "_apikey",
    "_private_key",
    "_secret_key",
    "_access_key",
    "_card_number",
    "_routing_key",
    "_webhook_url",
    "_signature",
)
_SENSITIVE_PREFIXES = ("password", "passwd")
#: Every sensitive name contains one of these; a string with none of them holds no
#: ``name=value`` secret (tests check the two lists stay in step).
_KEY_HINTS = (
    "pass",
    "pwd",
    "secret",
    "key",
    "credential",
    "token",
    "jwt",
    "otp",
    "csrf",
    "auth",
    "cookie",
    "session",
    "card",
    "pan",
    "cvv",
    "cvc",
    "security_code",
    "iban",
    "ssn",
    "webhook",
    "signature",
)

#: Containers nested deeper than this are replaced whole (it also stops reference cycles).
_MAX_DEPTH = 64

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_QUOTED_NAME = re.compile(r"[bB]?(?P<quote>['\"])(?P<name>[^'\"]*)(?P=quote)")

# A run of digits, optionally split by single spaces or dashes, not glued to a word or to
# a decimal point; runs shorter than 13 digits are not even matched.
_CARD_RUN = re.compile(r"(?<![\w.])(?<!\d[.,])\d(?:[ -]?\d){12,}(?![\w])(?![.,]\d)")
_CARD_SEPARATOR = re.compile(r"[ -]")
_CARD_MIN, _CARD_MAX = 13, 19
_CARD_FIRST_DIGITS = frozenset("23456")

_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*")
_BASIC = re.compile(r"(?i)\b(basic)\s+([A-Za-z0-9+/]+={0,2})(?![\w+/=])")
_COOKIE_HEADER = re.compile(
    r"(?i)(?<![\w-])((?:set-)?cookie[ \t]*:[ \t]*)(?![ \t]|\[REDACTED\])[^\r\n\"]+"
)
# The user name may be empty: Redis URLs carry only a password (redis://:pw@host).
_URL_PASSWORD = re.compile(
    r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/?#@\"']*:)(?!\[REDACTED\]@)[^\s@/\"']+@"
)
# A Sentry DSN (http://<public key>@host/<project>) carries its key as the user name, with no
# password: an http(s) URL's user name alone is redacted too.
_URL_USER = re.compile(r"(?i)\b(https?://)(?!\[REDACTED\]@)[^\s:/?#@\"']+@")

# Slack and Discord webhook URLs carry their secret in the path.
_WEBHOOK_PATH = re.compile(
    r"(?i)(hooks\.slack\.com/services/|discord(?:app)?\.com/api/webhooks/)(?!\[REDACTED\])[^\s\"']+"
)

_VALUE_CHARS = r"[^\s&,;\"'\\{}\[\]<>]+"
# The name of a ``name=value`` / ``name: value`` / ``"name": "value"`` / ``\"name\": \"v\"``
# fragment, up to its separator; only a sensitive name's value is then matched, so the
# value of any other name is scanned for fragments of its own ("next=/a?token=x").
_KEY_NAME = re.compile(
    r"(?<![\w.-])(?P<quote>\\?[\"']|)(?P<name>[A-Za-z_][\w.-]{0,127})(?P=quote)\s*[:=]\s*"
)
_KEY_VALUE = re.compile(
    r"\[[^\[\]\s\"']*\]"
    r"|\\\"(?:[^\"\\]|\\[^\"])*\\\""
    r"|\"(?:[^\"\\]|\\.)*\""
    r"|'(?:[^'\\]|\\.)*'"
    # a Python bytes or raw literal in a repr: token=b'...'
    r"|[bBrR]{1,2}(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?i:bearer|basic|digest|token)\s+(?:\[REDACTED\]|" + _VALUE_CHARS + r")"
    r"|" + _VALUE_CHARS
)

# An Authorization header's value is a scheme and its credentials, whatever the scheme
# ("ApiKey k-1", "SSWS 00a"): both words go, not only the schemes _KEY_VALUE knows.
_SCHEMED_VALUE = re.compile(r"[A-Za-z][\w.-]*[ \t]+(?:\[REDACTED\]|" + _VALUE_CHARS + r")")
_SCHEMED_NAMES = frozenset({"authorization", "proxy_authorization"})


class SecretValues:
    """The secret values a process has read; ``redact`` replaces them in any text.

    Values shorter than four characters are not kept: replacing every "a" would wreck each
    line. Thread-safe: ``add`` swaps in a new tuple, ``redact`` reads whichever is current.
    """

    _MIN_LENGTH = 4

    def __init__(self) -> None:
        """Start with no secret."""
        self._values: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        """Remember ``value`` as a secret."""
        if len(value) < self._MIN_LENGTH or value in self._values:
            return
        with self._lock:
            # Longest first, so a secret that contains another is replaced whole.
            self._values = tuple(sorted({*self._values, value}, key=len, reverse=True))

    def __bool__(self) -> bool:
        """Return whether any secret is known."""
        return bool(self._values)

    def redact(self, text: str) -> str:
        """Return ``text`` with every known secret replaced by ``[REDACTED]``."""
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text


#: The process-wide registry that ``scrub_text`` consults.
KNOWN_SECRETS = SecretValues()


def register_secret(value: str) -> None:
    """Have every later ``scrub``/``scrub_text`` replace ``value`` wherever it appears."""
    KNOWN_SECRETS.add(value)


@lru_cache(maxsize=4096)
def is_sensitive_key(name: str) -> bool:
    """Return whether a value stored under ``name`` must be redacted."""
    # sentry-sdk sends a frame's variables as reprs: an ASGI header pair arrives as
    # ["b'authorization'", "b'Bearer ...'"], so a quoted name counts as the name inside.
    if (quoted := _QUOTED_NAME.fullmatch(name.strip())) is not None:
        name = quoted.group("name")
    normalised = _CAMEL_BOUNDARY.sub("_", name.strip()).lower().replace("-", "_").replace(" ", "_")
    # "http.request.header.authorization": the last dotted segment names the value.
    for candidate in {normalised, normalised.rsplit(".", 1)[-1]}:
        if (
            candidate in SENSITIVE_KEYS
            or candidate.endswith(_SENSITIVE_SUFFIXES)
            or candidate.startswith(_SENSITIVE_PREFIXES)
        ):
            return True
    return False


def _luhn_valid(digits: str) -> bool:
    """Return whether a string of digits passes the Luhn checksum."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _is_card(digits: str) -> bool:
    """Return whether a string of digits looks like a payment card number."""
    return (
        _CARD_MIN <= len(digits) <= _CARD_MAX
        and digits[0] in _CARD_FIRST_DIGITS
        and _luhn_valid(digits)
    )


def _card_replacement(match: re.Match[str]) -> str:
    """Replace the card numbers inside one run of separated digits."""
    run = match.group(0)
    digits = _CARD_SEPARATOR.sub("", run)
    if _is_card(digits):
        return CARD
    if len(run) == len(digits):
        return run
    # Groups around a card ("4111 1111 1111 1111 2026", "exp 12 4111 1111 1111 1111"):
    # look for cards made of whole groups, the longest first, from the left.
    parts = _CARD_SEPARATOR.split(run)
    separators = _CARD_SEPARATOR.findall(run)
    out: list[str] = []
    start = 0
    while start < len(parts):
        end = _card_window(parts, start)
        if end is None:
            out.append(parts[start])
            if start < len(separators):
                out.append(separators[start])
            start += 1
        else:
            out.append(CARD)
            if end < len(separators):
                out.append(separators[end])
            start = end + 1
    return "".join(out)


def _card_window(parts: list[str], start: int) -> int | None:
    """Return the index of the last group of the longest card starting at ``start``."""
    found = None
    digits = ""
    for end in range(start, len(parts)):
        digits += parts[end]
        if len(digits) > _CARD_MAX:
            break
        if _is_card(digits):
            found = end
    return found


def _basic_replacement(match: re.Match[str]) -> str:
    """Redact a Basic credential, but not the word "basic" in a sentence."""
    credential = match.group(2)
    looks_encoded = any(c.isdigit() or c in "+/=" for c in credential) or any(
        c.isupper() for c in credential[1:]
    )
    return f"{match.group(1)} {REDACTED}" if looks_encoded else match.group(0)


def _redacted_value(value: str, quote: str) -> str:
    """Return what replaces a sensitive ``value``, keeping its quoting."""
    if value == REDACTED:
        return value
    if value.startswith('\\"'):
        return f'\\"{REDACTED}\\"'
    if value.startswith(('"', "'")):
        return f"{value[0]}{REDACTED}{value[0]}"
    if quote == '"':  # JSON text: keep it valid JSON
        return f'"{REDACTED}"'
    return REDACTED


def _takes_scheme(name: str) -> bool:
    """Return whether ``name`` is an Authorization header (a scheme, then credentials)."""
    return name.lower().replace("-", "_").rsplit(".", 1)[-1] in _SCHEMED_NAMES


def _scrub_key_values(text: str) -> str:
    """Redact the value of every sensitive ``name=value`` fragment in ``text``."""
    out: list[str] = []
    done = position = 0
    while (found := _KEY_NAME.search(text, position)) is not None:
        position = found.end()
        if not is_sensitive_key(found.group("name")):
            continue
        value = None
        if not found.group("quote") and _takes_scheme(found.group("name")):
            value = _SCHEMED_VALUE.match(text, position)
        value = value or _KEY_VALUE.match(text, position)
        if value is None:
            continue
        out.append(text[done:position])
        out.append(_redacted_value(value.group(0), found.group("quote")))
        done = position = value.end()
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def scrub_text(text: str) -> str:
    """Return ``text`` with card numbers, credentials and secret fragments replaced."""
    if KNOWN_SECRETS:
        text = KNOWN_SECRETS.redact(text)
    if len(text) < 5:  # "pwd=x" is the shortest thing worth scrubbing
        return text
    out = _CARD_RUN.sub(_card_replacement, text)
    lower = out.lower()
    if "bearer" in lower:
        out = _BEARER.sub(rf"\1 {REDACTED}", out)
    if "basic" in lower:
        out = _BASIC.sub(_basic_replacement, out)
    if "cookie" in lower:
        out = _COOKIE_HEADER.sub(rf"\1{REDACTED}", out)
    if "://" in out and "@" in out:
        out = _URL_PASSWORD.sub(rf"\1{REDACTED}@", out)
        out = _URL_USER.sub(rf"\1{REDACTED}@", out)
    if "hooks.slack.com" in lower or "/api/webhooks/" in lower:
        out = _WEBHOOK_PATH.sub(rf"\1{REDACTED}", out)
    if ("=" in out or ":" in out) and any(hint in lower for hint in _KEY_HINTS):
        out = _scrub_key_values(out)
    return out


def scrub(value: object) -> object:
    """Return a scrubbed copy of ``value`` (dicts, lists, tuples, strings); never mutate it."""
    return _scrub(value, 0)


def _scrub(value: object, depth: int) -> object:
    """Scrub one value found ``depth`` containers deep."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict | list | tuple) and depth >= _MAX_DEPTH:
        return REDACTED
    if isinstance(value, dict):
        return {
            key: REDACTED
            if isinstance(key, str) and is_sensitive_key(key)
            else _scrub(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_scrub_item(item, depth + 1) for item in value]
    if isinstance(value, tuple):
        return tuple(_scrub_item(item, depth + 1) for item in value)
    return value


def _scrub_item(item: object, depth: int) -> object:
    """Scrub a list or tuple item, redacting the value of a sensitive ``(name, value)`` pair."""
    if (
        isinstance(item, list | tuple)
        and len(item) == 2
        and isinstance(item[0], str)
        and is_sensitive_key(item[0])
    ):
        pair = (scrub_text(item[0]), REDACTED)
        return list(pair) if isinstance(item, list) else pair
    return _scrub(item, depth)


def shown_setting(model: Any, variable: str, value: object) -> str:
    """How a settings loader shows a rejected value in its error: ``<hidden>`` for a secret.

    ``model`` is the pydantic settings class, ``variable`` the field or alias pydantic names.
    A field typed ``SecretStr`` never shows its value, even mistyped (a DSN with a typo still
    holds the project's key); other values are shown scrubbed.
    """
    for name, info in model.model_fields.items():
        alias = info.validation_alias
        names = {name, *getattr(alias, "choices", ()), *([alias] if isinstance(alias, str) else [])}
        if variable in names:
            if "SecretStr" in str(info.annotation):
                return "<hidden>"
            break
    if is_sensitive_key(variable):
        return "<hidden>"
    return scrub_text(repr(value))
