"""Click classes (SPEC §12): every counted GET is ``human``, ``bot``, ``preview`` or ``prefetch``.

Decided from the request alone, in this order (the first rule that applies):

1. ``prefetch``: a ``Sec-Purpose`` or ``Purpose`` header containing ``prefetch`` (browsers send it for
   speculative loads, which the person may never see);
2. ``preview``: a User-Agent containing one of :data:`PREVIEW_AGENTS`, the link-unfurling fetchers of chat and
   social apps (our own list: the crawler list below names several of them too, as bots);
3. ``bot``: no User-Agent at all, or one matching the ``crawler-user-agents`` list (PyPI package of
   monperrus/crawler-user-agents, 1,500 patterns, updated with the package: ``pip install -U
   crawler-user-agents``; the version in use is in the gateway's start line);
4. ``human``: everything else.

A User-Agent's class is cached per process (LRU of ``CLICKMUNCHER_GATEWAY_AGENT_CACHE`` entries): most
clicks cost one dictionary lookup. An agent not cached costs one search of a single compiled regular
expression (a trie of the list's literal patterns plus its few real expressions: 30-60 µs for a browser's
User-Agent); only the first :data:`MAX_AGENT_CHARS` characters are read, which bounds that cost for hostile,
ever-changing headers.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from importlib.metadata import version
from typing import TypeAlias

from multidict import CIMultiDictProxy

from clickmuncher.records import BOT, HUMAN, PREFETCH, PREVIEW

MAX_AGENT_CHARS = 512
PREVIEW_AGENTS = (  # lowercase substrings of the User-Agents that fetch a link to draw its preview
    "slackbot",  # Slack: "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
    "slack-imgproxy",
    "discordbot",  # Discord
    "whatsapp",  # WhatsApp: "WhatsApp/2.23.20.0"
    "telegrambot",  # Telegram
    "twitterbot",  # X / Twitter, also iMessage (which sends "facebookexternalhit ... Twitterbot")
    "facebookexternalhit",  # Facebook, Messenger, Instagram, iMessage
    "facebot",
    "linkedinbot",  # LinkedIn
    "skypeuripreview",  # Skype and Microsoft Teams
    "microsoftpreview",  # Outlook, Teams
    "redditbot",  # Reddit
    "mastodon",  # Mastodon servers: "Mastodon/4.2.0 (http.rb/5.1.1; +https://example.social/)"
    "cardyb",  # Bluesky: "Bluesky Cardyb/1.1"
    "mattermost",  # Mattermost: "Mattermost-Bot/1.1"
    "rocket.chat",
    "zulip",  # Zulip: "ZulipURLPreview/1.0"
    "viber",
    "snapchat",
    "pinterestbot",
    "vkshare",  # VK
    "line-poker",  # LINE
    "iframely",  # embedding services used by many apps
    "embedly",
    "google-pagerenderer",  # Google Chat and Docs link previews
)
_PURPOSE_HEADERS = ("Sec-Purpose", "Purpose")
_META = frozenset(r"^$.*+?()[]{}|")


def crawler_list_version() -> str:
    return version("crawler-user-agents")


@functools.cache
def crawler_pattern() -> re.Pattern[str]:
    """The crawler list as one expression: its literal patterns as a trie (one branch per first character,
    so a search does not try 1,500 alternatives at every position), then the rest as they are."""
    from crawleruseragents import CRAWLER_USER_AGENTS_DATA

    patterns = [entry["pattern"] for entry in CRAWLER_USER_AGENTS_DATA]
    literals = [literal for literal in map(_literal, patterns) if literal is not None]
    others = [f"(?:{p})" for p in patterns if _literal(p) is None]
    return re.compile("|".join([_trie_expression(literals), *others]))


def _literal(pattern: str) -> str | None:
    """The text a pattern matches when it is a plain string (escapes of punctuation allowed), else None."""
    out: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            escaped = next(chars, "")
            if not escaped or escaped.isalnum():
                return None  # \d, \s, \b ...: a real expression
            out.append(escaped)
        elif char in _META:
            return None
        else:
            out.append(char)
    return "".join(out)


Trie: TypeAlias = dict[str, "Trie"]  # "" marks the end of a word


def _trie_expression(words: Iterable[str]) -> str:
    trie: Trie = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _node_expression(trie)


def _node_expression(node: Trie) -> str:
    branches = [re.escape(char) + _node_expression(child) for char, child in sorted(node.items()) if char]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
    return f"(?:{body})?" if "" in node else body


class Classifier:
    """Decides a request's class (see the module docstring); ``cache_size`` User-Agents kept (0: none)."""

    def __init__(self, cache_size: int) -> None:
        self._crawlers = crawler_pattern()
        self.agent_class: Callable[[str], int] = (
            functools.lru_cache(maxsize=cache_size)(self._agent_class) if cache_size else self._agent_class
        )

    def classify(self, headers: CIMultiDictProxy[str], agent: str) -> int:
        """The class index (``clickmuncher.records.CLASSES``) of a request with these headers and
        User-Agent (``""`` when it has none)."""
        for name in _PURPOSE_HEADERS:
            purpose = headers.get(name)
            if purpose is not None and "prefetch" in purpose.lower():
                return PREFETCH
        return self.agent_class(agent[:MAX_AGENT_CHARS])

    def _agent_class(self, agent: str) -> int:
        if not agent.strip():
            return BOT
        lowered = agent.lower()
        if any(token in lowered for token in PREVIEW_AGENTS):
            return PREVIEW
        return BOT if self._crawlers.search(agent) else HUMAN
