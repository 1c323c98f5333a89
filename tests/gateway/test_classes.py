"""Click classes and visitor ids (SPEC §12): decided at the gateway from the request alone, every class
redirected, no address or User-Agent in what leaves the gateway."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import quote

import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from pydantic import SecretStr

from clickmuncher.records import BOT, CLASSES, HUMAN, PREFETCH, PREVIEW
from clickmuncher.settings import ConfigError, Settings
from gateway.classes import MAX_AGENT_CHARS, Classifier, crawler_pattern
from gateway.visitors import DAY_MS, VisitorIds, day_key, visitor_key
from tests.gateway.helpers import SIGNING_KEY, GatewayClient, read_topic

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
SAFARI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
SLACKBOT = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
AGENTS = [
    (FIREFOX, HUMAN),
    (CHROME, HUMAN),
    (SAFARI_IOS, HUMAN),
    (GOOGLEBOT, BOT),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", BOT),
    ("curl/8.5.0", BOT),
    ("python-requests/2.32.3", BOT),
    ("", BOT),
    ("   ", BOT),
    (SLACKBOT, PREVIEW),
    ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", PREVIEW),
    ("WhatsApp/2.23.20.0", PREVIEW),
    ("TelegramBot (like TwitterBot)", PREVIEW),
    ("Twitterbot/1.0", PREVIEW),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", PREVIEW),
    ("LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)", PREVIEW),
    ("Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5", PREVIEW),
    ("Mastodon/4.2.0 (http.rb/5.1.1; +https://example.social/)", PREVIEW),
]


def _classify(classifier: Classifier, **values: str) -> int:
    headers = CIMultiDictProxy(CIMultiDict({name.replace("_", "-"): v for name, v in values.items()}))
    return classifier.classify(headers, headers.get("User-Agent", ""))


@pytest.mark.parametrize(("agent", "cls"), AGENTS)
def test_agents_are_classified(agent: str, cls: int) -> None:
    assert CLASSES[_classify(Classifier(16), User_Agent=agent)] == CLASSES[cls]


def test_prefetch_headers_win_and_a_missing_agent_is_a_bot() -> None:
    classifier = Classifier(0)
    assert _classify(classifier, User_Agent=CHROME, Sec_Purpose="prefetch") == PREFETCH
    assert _classify(classifier, User_Agent=CHROME, Sec_Purpose="prefetch;prerender") == PREFETCH
    assert _classify(classifier, User_Agent=FIREFOX, Purpose="prefetch") == PREFETCH
    assert _classify(classifier, User_Agent=CHROME, Sec_Purpose="") == HUMAN
    assert _classify(classifier) == BOT


def test_the_trie_expression_matches_what_the_list_matches() -> None:
    """Every sample User-Agent of the crawler list is a bot by our one expression, as by the package's."""
    import crawleruseragents

    samples = [
        ua for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA for ua in entry.get("instances", [])
    ]
    assert len(samples) > 1000
    pattern = crawler_pattern()
    assert [ua for ua in samples if bool(pattern.search(ua)) != crawleruseragents.is_crawler(ua)] == []
    for agent, cls in AGENTS:
        if agent.strip() and cls == HUMAN:
            assert not crawleruseragents.is_crawler(agent)


def test_classes_are_cached_per_agent_and_only_its_head_is_read() -> None:
    classifier = Classifier(4)
    for _ in range(3):
        _classify(classifier, User_Agent=GOOGLEBOT)
    info = classifier.agent_class.cache_info()  # type: ignore[attr-defined]
    assert (info.hits, info.misses) == (2, 1)
    assert _classify(classifier, User_Agent=FIREFOX + " " * MAX_AGENT_CHARS + "Googlebot/2.1") == HUMAN


def test_visitor_ids_are_hmac_sha256_under_a_day_key() -> None:
    key = b"k" * 32
    ts_ms = 1_795_480_200_000
    day = day_key(key, ts_ms // DAY_MS)
    assert day == hmac.digest(key, b"clickmuncher visitor ids 2026-11-24", "sha256")
    expected = hmac.digest(day, f"203.0.113.7\n{FIREFOX}".encode(), hashlib.sha256)[:8].hex()
    ids = VisitorIds(key)
    assert (
        ids.vid("203.0.113.7", FIREFOX, ts_ms)
        == expected
        == VisitorIds(key).vid("203.0.113.7", FIREFOX, 0 + ts_ms)
    )
    assert len(expected) == 16
    assert ids.vid("203.0.113.7", FIREFOX, ts_ms + DAY_MS) != expected  # another day: not linkable
    assert ids.vid("203.0.113.8", FIREFOX, ts_ms) != expected
    assert VisitorIds(b"j" * 32).vid("203.0.113.7", FIREFOX, ts_ms) != expected
    assert len(ids.vid("::1", "\udcff odd bytes", ts_ms)) == 16


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, allowed_hosts=["example.com"], **values)  # type: ignore[call-arg]


def test_visitor_key_is_set_or_derived_from_the_signing_key() -> None:
    assert visitor_key(_settings(visitor_key=SecretStr("v" * 32))) == b"v" * 32
    derived = visitor_key(_settings(signing_key=SecretStr(SIGNING_KEY)))
    assert derived == hmac.digest(SIGNING_KEY.encode(), b"clickmuncher visitor key", "sha256")
    with pytest.raises(ConfigError, match="CLICKMUNCHER_VISITOR_KEY nor CLICKMUNCHER_SIGNING_KEY"):
        visitor_key(_settings())
    with pytest.raises(ConfigError, match="CLICKMUNCHER_VISITOR_KEY has 5 bytes"):
        visitor_key(_settings(visitor_key=SecretStr("short")))


@pytest.mark.kafka
async def test_every_class_is_redirected_and_counted_apart(client: GatewayClient, settings: Settings) -> None:
    link = f"/?u={quote('https://example.com/launch', safe='')}"
    requests = [
        {"User-Agent": FIREFOX},
        {"User-Agent": FIREFOX},  # the same visitor again
        {"User-Agent": CHROME},
        {"User-Agent": GOOGLEBOT},
        {"User-Agent": SLACKBOT},
        {"User-Agent": CHROME, "Sec-Purpose": "prefetch"},
    ]
    for headers in requests:
        assert (await client.get(link, headers=headers)).status == 302
    assert (await client.head(link, headers={"User-Agent": FIREFOX})).status == 302  # not counted
    by_class = {c: client.sample("clickmuncher_gateway_clicks_by_class_total", {"cls": c}) for c in CLASSES}
    await client.close()

    events = [json.loads(e.value) for e in read_topic(settings.kafka_bootstrap, settings.clicks_topic)]
    assert sorted(e["cls"] for e in events) == ["bot", "human", "human", "human", "prefetch", "preview"]
    assert by_class == {"human": 3, "bot": 1, "preview": 1, "prefetch": 1}
    humans = [e["vid"] for e in events if e["cls"] == "human"]
    assert len(set(humans)) == 2  # Firefox twice is one visitor; Chrome another
    assert all(set(e) == {"v", "url", "ts_ms", "cls", "vid"} for e in events)
    raw = b"".join(e.value for e in read_topic(settings.kafka_bootstrap, settings.clicks_topic))
    assert b"127.0.0.1" not in raw and b"Mozilla" not in raw and b"Firefox" not in raw
