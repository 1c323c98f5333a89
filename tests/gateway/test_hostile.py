"""Hostile inputs: each is refused with its status and reason, never redirected, never produces a click."""

from __future__ import annotations

import pytest

from clickmuncher.settings import Settings
from gateway.signing import signature
from tests.gateway.helpers import SIGNING_KEY, GatewayClient, topic_count

EVIL = "http://evil.com/"
SIGNED_OTHER = signature("http://evil.com/other", SIGNING_KEY)
SIGNED_WRONG_KEY = signature(EVIL, "another-key")
HEX_WRONG = "ab" * 32

# (query parameters, status, reason)
HOSTILE: list[tuple[list[tuple[str, str]], int, str]] = [
    ([], 400, "missing_u"),
    ([("u", "")], 400, "missing_u"),
    ([("s", signature("", SIGNING_KEY))], 400, "missing_u"),
    ([("u", "javascript:alert(1)")], 400, "bad_scheme"),
    ([("u", "data:text/html,<script>alert(1)</script>")], 400, "bad_scheme"),
    ([("u", "ftp://example.com/file")], 400, "bad_scheme"),
    ([("u", "//evil.com/")], 400, "bad_scheme"),
    ([("u", "http:/evil.com")], 400, "bad_scheme"),
    ([("u", "http:evil.com")], 400, "bad_scheme"),
    ([("u", "http:///evil.com")], 400, "no_host"),
    ([("u", "http://example.com@evil.com/")], 400, "userinfo"),
    ([("u", "http://example.com:@evil.com/")], 400, "userinfo"),
    ([("u", "http://evil.com\\@example.com/")], 400, "backslash"),
    ([("u", "http:\\\\evil.com")], 400, "backslash"),
    ([("u", "http://example.com%40evil.com/")], 400, "bad_host"),
    ([("u", "http://%65vil.com/")], 400, "bad_host"),
    ([("u", "http://2130706433/")], 400, "bad_host"),
    ([("u", "http://0x7f.0.0.1/")], 400, "bad_host"),
    ([("u", "http://[::1/")], 400, "bad_host"),
    ([("u", "http://example.com:99999/")], 400, "bad_port"),
    ([("u", "http://example.com:80x/")], 400, "bad_port"),
    ([("u", "http://example.com/\r\nSet-Cookie: a=b")], 400, "crlf"),
    ([("u", "http://example.com/\n")], 400, "crlf"),
    ([("u", "http://example.com/\x00")], 400, "control_char"),
    ([("u", "http://example.com/\t")], 400, "control_char"),
    ([("u", "http://example.com/\x85")], 400, "control_char"),
    ([("u", "http://exam ple.com/")], 400, "whitespace"),
    ([("u", "http://ex\u0430mple.com/")], 400, "non_ascii"),
    ([("u", "http://example.com/\u2028")], 400, "non_ascii"),
    ([("u", "http://example.com/" + "a" * 2048)], 400, "too_long"),
    ([("u", "http://example.com/"), ("u", EVIL)], 400, "duplicate_param"),
    ([("u", EVIL), ("s", "x"), ("s", "y")], 400, "duplicate_param"),
    ([("u", EVIL)], 403, "host_not_allowed"),
    ([("u", "HTTPS://EVIL.COM/")], 403, "host_not_allowed"),
    ([("u", "http://example.com.evil.com/")], 403, "host_not_allowed"),
    ([("u", "http://evilexample.com/")], 403, "host_not_allowed"),
    ([("u", "http://allowed.org/")], 403, "host_not_allowed"),
    ([("u", "http://evil.com#@example.com")], 403, "host_not_allowed"),
    ([("u", "http://evil.com?@example.com")], 403, "host_not_allowed"),
    ([("u", EVIL), ("s", "AAAA")], 403, "bad_signature"),
    ([("u", EVIL), ("s", "")], 403, "bad_signature"),
    ([("u", EVIL), ("s", SIGNED_OTHER)], 403, "bad_signature"),
    ([("u", EVIL), ("s", SIGNED_WRONG_KEY)], 403, "bad_signature"),
    ([("u", EVIL), ("s", HEX_WRONG)], 403, "bad_signature"),
    ([("u", "https://evil.com/"), ("s", signature(EVIL, SIGNING_KEY))], 403, "bad_signature"),
    ([("u", "http://EVIL.com/"), ("s", signature(EVIL, SIGNING_KEY))], 403, "bad_signature"),
]


@pytest.mark.kafka
async def test_hostile_inputs_are_refused(client: GatewayClient, settings: Settings) -> None:
    assert len(HOSTILE) >= 25
    for params, status, reason in HOSTILE:
        for method in ("GET", "HEAD"):
            response = await client.request(method, "/", params=params)
            assert response.status == status, (params, method)
            assert "Location" not in response.headers
            if method == "GET":
                assert f"refused: {reason}:" in await response.text(), params
    assert client.sample("clickmuncher_gateway_clicks_total") == 0
    assert client.sample("clickmuncher_gateway_rejected_total", {"reason": "bad_signature"}) == 2 * sum(
        1 for _, _, reason in HOSTILE if reason == "bad_signature"
    )
    await client.close()  # drains the producer: had anything been produced, it would now be on the topic
    assert topic_count(settings.kafka_bootstrap, settings.clicks_topic) == 0
