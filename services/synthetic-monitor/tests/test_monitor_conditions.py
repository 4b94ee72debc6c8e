"""Conditions and JSON paths: parsing, validation at load, evaluation against observations."""

from __future__ import annotations

import pytest

from synthetic_monitor.conditions import Observation, parse_condition
from synthetic_monitor.errors import ConditionError
from synthetic_monitor.jsonpath import MISSING, parse_path

BODY = '{"items": [{"id": 3, "name": "mug"}, {"id": 4}], "ok": true, "token": "abc", "n": null}'


def http(**overrides: object) -> Observation:
    """Return an HTTP observation: 200, 120 ms, JSON body, a content-type header."""
    values: dict[str, object] = {
        "kind": "http",
        "response_time_ms": 120.0,
        "connected": True,
        "status": 200,
        "body": BODY,
        "headers": {"Content-Type": "application/json"},
        "cert_days_left": 20.5,
    }
    values.update(overrides)
    return Observation(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("[STATUS] == 200", True),
        ("[STATUS] != 200", False),
        ("[STATUS] < 300", True),
        ("[STATUS] == any(200, 204)", True),
        ("[RESPONSE_TIME] < 300", True),
        ("[RESPONSE_TIME] > 300", False),
        ("[BODY].items[0].id == 3", True),
        ("[BODY].items[-1].id == 4", True),
        ("[BODY].items[0].name == mug", True),
        ('[BODY].items[0].name == "mug"', True),
        ("[BODY].ok == true", True),
        ("[BODY].n == null", True),
        ("len([BODY].items) == 2", True),
        ("has([BODY].token) == true", True),
        ("has([BODY].missing) == false", True),
        ("[BODY].missing == 3", False),
        ("[BODY].items[5].id == 3", False),
        ('[BODY] =~ "token": "a.c"', True),
        ("[BODY] !~ error", True),
        ("[BODY].token == pat(a*)", True),
        ("[HEADERS].content-type == application/json", True),
        ("[HEADERS].X-Missing == x", False),
        ("[CERT_DAYS_LEFT] > 14", True),
        ("[CERT_DAYS_LEFT] > 30", False),
        ("[CONNECTED] == true", True),
    ],
)
def test_http_conditions_evaluate_as_written(condition: str, expected: bool) -> None:
    """Each placeholder, path, function and operator gives the documented answer."""
    result = parse_condition(condition, "http").evaluate(http())
    assert result.success is expected, result.detail


def test_a_failed_condition_shows_the_value_it_saw() -> None:
    """The detail reads like the condition with the actual value beside the placeholder."""
    result = parse_condition("[STATUS] == 200", "http").evaluate(http(status=503))
    assert result.detail == "[STATUS] (503) == 200"
    missing = parse_condition("[BODY].nope == 1", "http").evaluate(http())
    assert missing.detail == "[BODY].nope (missing) == 1"


def test_a_body_that_is_not_json_makes_paths_missing() -> None:
    """A path into a non-JSON body is missing, so the condition fails instead of raising."""
    result = parse_condition("[BODY].a == 1", "http").evaluate(http(body="<html>"))
    assert not result.success


def test_dns_conditions_read_the_rcode_and_answers() -> None:
    """DNS steps expose [DNS_RCODE], [DNS_ANSWERS] and the first answer as [BODY]."""
    seen = Observation(
        kind="dns",
        response_time_ms=3.0,
        connected=True,
        body="10.0.0.1",
        dns_rcode="NOERROR",
        dns_answers=["10.0.0.1"],
    )
    for text in ("[DNS_RCODE] == NOERROR", "[DNS_ANSWERS] == 1", "[BODY] == 10.0.0.1"):
        assert parse_condition(text, "dns").evaluate(seen).success, text


@pytest.mark.parametrize(
    ("condition", "kind", "message"),
    [
        ("[STATUS] = 200", "http", "cannot read condition"),
        ("[STATUS]==200", "http", "cannot read condition"),
        ("STATUS == 200", "http", "must be a placeholder"),
        ("[NOPE] == 1", "http", "unknown placeholder [NOPE]"),
        ("[STATUS] == 200", "tcp", "not available in a tcp step"),
        ("[STATUS] < fast", "http", "compares numbers"),
        ("[STATUS] == ok", "http", "is a number"),
        ("[BODY] =~ (unclosed", "http", "invalid regular expression"),
        ("[BODY].items[x] == 1", "http", "unexpected '['"),
        ("[BODY]. == 1", "http", "expected a key name"),
        ("[HEADERS] == x", "http", "needs a header name"),
        ("[STATUS].x == 1", "http", "takes no path"),
        ("has([BODY].a) == 1", "http", "true or false"),
        ("[STATUS] == any()", "http", "at least one value"),
    ],
)
def test_bad_conditions_are_rejected_with_a_reason(condition: str, kind: str, message: str) -> None:
    """Parsing fails with a message saying what is wrong and what would be right."""
    with pytest.raises(ConditionError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_condition(condition, kind)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.items[0].id", 3),
        ("items[1].id", 4),
        (".token", "abc"),
        ('$["token"]', "abc"),
        ("$.items[9]", MISSING),
        ("$.token.x", MISSING),
        ("$", {"items": [{"id": 3}, {"id": 4}], "token": "abc"}),
    ],
)
def test_json_paths_select_one_value(path: str, expected: object) -> None:
    """Keys, indexes (negative too) and quoted keys select a value, or MISSING."""
    document = {"items": [{"id": 3}, {"id": 4}], "token": "abc"}
    assert parse_path(path).get(document) == expected
