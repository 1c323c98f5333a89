"""URL normalization (SPEC §6): examples and hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clickmuncher.urls import Rejected, check_url, normalize_percent, normalize_url, remove_dot_segments

UNRESERVED = "abcXYZ019-._~"
SUB_DELIMS = "!$&'()*+,;=:@"
NOT_RFC3986 = '"<>[]^`{|}'  # printable ASCII that RFC 3986 allows in no path or query


def test_spec_equal_forms_are_one_key() -> None:
    forms = ["http://Google.com", "http://google.com/", "http://google.com:80/#top", "HTTP://GOOGLE.COM:80"]
    assert {normalize_url(form) for form in forms} == {"http://google.com/"}


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("https://Example.com:443/a/b/", "https://example.com/a/b/"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("http://example.com:080/", "http://example.com/"),
        ("http://example.com:/x", "http://example.com/x"),
        ("http://example.com/a/./b/../c", "http://example.com/a/c"),
        ("http://example.com/a/b/..", "http://example.com/a/"),
        ("http://example.com/%7euser/%2fx%3a", "http://example.com/~user/%2Fx%3A"),
        ("http://example.com/x/%2E%2e/%41", "http://example.com/A"),
        ("http://example.com/p?b=2&a=1&b=1", "http://example.com/p?b=2&a=1&b=1"),
        ("http://example.com/p?q=%7e%2f&r=%zz", "http://example.com/p?q=~%2F&r=%zz"),
        ("http://example.com/dir/", "http://example.com/dir/"),
        ("http://example.com/dir", "http://example.com/dir"),
        ("http://example.com?x", "http://example.com/?x"),
        ("http://example.com/?", "http://example.com/?"),
        ("http://[2001:DB8::1]:80/", "http://[2001:db8::1]/"),
        ("http://192.168.0.1:8080/A", "http://192.168.0.1:8080/A"),
        ("http://example.com/a%20b", "http://example.com/a%20b"),
        ("http://example.com/a/b#frag?x", "http://example.com/a/b"),
        ("http://example.com/a{b}", "http://example.com/a%7Bb%7D"),
        ("http://example.com/a%7bb%7D", "http://example.com/a%7Bb%7D"),
        ('http://example.com/"<>^`|[]', "http://example.com/%22%3C%3E%5E%60%7C%5B%5D"),
        ("http://example.com/?q={x}&it's=[1]", "http://example.com/?q=%7Bx%7D&it%27s=%5B1%5D"),
        ("http://example.com/it's", "http://example.com/it's"),
        ("http://Example.COM./a", "http://example.com/a"),
        ("http://example.com.:80", "http://example.com/"),
    ],
)
def test_examples(url: str, normalized: str) -> None:
    assert normalize_url(url) == normalized


def test_remove_dot_segments_rfc_examples() -> None:
    assert remove_dot_segments("/a/b/c/./../../g") == "/a/g"
    assert remove_dot_segments("/../x") == "/x"
    assert remove_dot_segments("/a//b/") == "/a//b/"


def test_rejects_non_urls() -> None:
    with pytest.raises(Rejected):
        normalize_url("mailto:someone@example.com")


def _escape(char: str) -> st.SearchStrategy[str]:
    code = f"{ord(char):02x}"
    return st.sampled_from([f"%{code}", f"%{code.upper()}"])


ESCAPED = st.sampled_from(UNRESERVED + "/?#%[] ").flatmap(_escape)
SEGMENT = st.lists(
    st.one_of(st.sampled_from(UNRESERVED + SUB_DELIMS + NOT_RFC3986), ESCAPED), min_size=0, max_size=6
).map("".join) | st.sampled_from([".", "..", "%2e", "%2E%2e", ".%2E"])
PATH = st.lists(SEGMENT, max_size=5).map(lambda segs: "".join("/" + s for s in segs))
PARAM = st.tuples(
    st.text(UNRESERVED, min_size=1, max_size=4),
    st.lists(st.one_of(st.sampled_from(UNRESERVED + NOT_RFC3986 + "'/?:@"), ESCAPED)),
).map(lambda kv: f"{kv[0]}={''.join(kv[1])}")
QUERY = st.none() | st.lists(PARAM, max_size=4).map("&".join)
LABEL = st.text("abcdefxyzABCXYZ0189", min_size=1, max_size=8)
HOST = st.lists(LABEL, min_size=1, max_size=3).map(".".join).filter(lambda h: h.split(".")[-1][0].isalpha())
SCHEME = st.sampled_from(["http", "https", "HTTP", "Https"])
PORT = st.sampled_from(["", ":80", ":443", ":8080", ":"])
FRAGMENT = st.none() | st.text(UNRESERVED + "/?", max_size=6)


@st.composite
def urls(draw: st.DrawFn) -> str:
    url = f"{draw(SCHEME)}://{draw(HOST)}{draw(PORT)}{draw(PATH)}"
    query, fragment = draw(QUERY), draw(FRAGMENT)
    url += "" if query is None else f"?{query}"
    return url + ("" if fragment is None else f"#{fragment}")


@given(urls())
def test_idempotent_and_valid(url: str) -> None:
    once = normalize_url(url)
    assert normalize_url(once) == once
    check_url(once)


@given(urls(), st.text(UNRESERVED, max_size=5))
def test_equal_forms_map_to_one_key(url: str, fragment: str) -> None:
    key = normalize_url(url)
    parts = check_url(key)
    default = {"http": "80", "https": "443"}[parts.scheme]
    variants = [
        key.replace(f"://{parts.host}", f"://{parts.host.upper()}", 1),
        key.replace(f"{parts.scheme}://", f"{parts.scheme.upper()}://", 1),
        key.split("#")[0] + f"#{fragment}",
    ]
    if not parts.port:
        variants.append(key.replace(f"://{parts.host}", f"://{parts.host}:{default}", 1))
    if parts.path == "/":
        variants.append(key.replace(f"://{parts.host}/", f"://{parts.host}", 1))
    assert {normalize_url(variant) for variant in variants} == {key}


@given(urls())
def test_query_order_and_values_preserved(url: str) -> None:
    query = check_url(url).query
    normalized = check_url(normalize_url(url)).query
    if query is None:
        assert normalized is None
    else:
        assert normalized is not None
        assert normalized.split("&") == [
            normalize_percent(_encode(param, NOT_RFC3986 + "'")) for param in query.split("&")
        ]


@given(PATH.filter(lambda p: p not in ("", "/")), st.booleans())
def test_non_root_trailing_slash_preserved(path: str, slash: bool) -> None:
    path = remove_dot_segments(normalize_percent(_encode(path, NOT_RFC3986))).rstrip("/") + (
        "/" if slash else ""
    )
    if path in ("", "/"):
        return
    key = normalize_url(f"http://example.com{path}")
    assert key.endswith("/") == slash
    assert check_url(key).path == path


# What a browser puts on the wire for an http(s) URL (WHATWG URL): scheme and host lowercased, the default
# port dropped, the characters of the path and query percent-encode sets encoded (hex in uppercase), dot
# segments removed (`%2e` counts as a dot), an empty path made `/`, the fragment left out; every other
# character exactly as written.
PATH_SET = '"<>`{}^'
QUERY_SET = "\"<>'"
_DOTS = {".": ".", "%2e": ".", "..": "..", ".%2e": "..", "%2e.": "..", "%2e%2e": ".."}


def _encode(text: str, chars: str) -> str:
    return "".join(f"%{ord(c):02X}" if c in chars else c for c in text)


def browser_sends(url: str) -> str:
    parts = check_url(url)
    scheme = parts.scheme.lower()
    port = "" if parts.port in ("", {"http": "80", "https": "443"}[scheme]) else f":{int(parts.port)}"
    segments = [_DOTS.get(segment.lower(), segment) for segment in _encode(parts.path, PATH_SET).split("/")]
    path = remove_dot_segments("/".join(segments)) or "/"
    query = "" if parts.query is None else "?" + _encode(parts.query, QUERY_SET)
    return f"{scheme}://{parts.host.lower()}{port}{path}{query}"


@st.composite
def sent_alike(draw: st.DrawFn) -> tuple[str, str]:
    """Two spellings of one URL that a browser sends identically: characters it would encode written
    raw in one and already encoded in the other, host and scheme case, default port and fragment varied."""
    url = draw(urls())
    parts = check_url(url)

    def respell(text: str, chars: str) -> str:
        return "".join(f"%{ord(c):02X}" if c in chars and draw(st.booleans()) else c for c in text)

    scheme = draw(st.sampled_from([parts.scheme.lower(), parts.scheme.upper()]))
    host = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in parts.host)
    port = parts.port
    if port in ("", {"http": "80", "https": "443"}[parts.scheme.lower()]) and draw(st.booleans()):
        port = "" if port else {"http": "80", "https": "443"}[parts.scheme.lower()]
    other = f"{scheme}://{host}{':' + port if port else ''}{respell(parts.path, PATH_SET)}"
    if parts.query is not None:
        other += "?" + respell(parts.query, QUERY_SET)
    fragment = draw(FRAGMENT)
    return url, other + ("" if fragment is None else f"#{fragment}")


@given(sent_alike())
def test_urls_a_browser_sends_identically_are_one_key(pair: tuple[str, str]) -> None:
    first, second = pair
    assert browser_sends(first) == browser_sends(second)  # the model: the same request on the wire
    assert normalize_url(first) == normalize_url(second)
    assert normalize_url(browser_sends(first)) == normalize_url(first)  # and the wire form is one key too


@given(urls())
def test_no_character_outside_rfc3986_survives_in_a_key(url: str) -> None:
    key = normalize_url(url)
    assert not set(key) & set(NOT_RFC3986)
    assert normalize_url(key) == key
