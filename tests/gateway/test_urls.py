"""URL normalization (SPEC §6): examples and hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.urls import Rejected, check_url, normalize_percent, normalize_url, remove_dot_segments

UNRESERVED = "abcXYZ019-._~"
SUB_DELIMS = "!$&'()*+,;=:@"


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
SEGMENT = st.lists(st.one_of(st.sampled_from(UNRESERVED + SUB_DELIMS), ESCAPED), min_size=0, max_size=6).map(
    "".join
) | st.sampled_from([".", ".."])
PATH = st.lists(SEGMENT, max_size=5).map(lambda segs: "".join("/" + s for s in segs))
PARAM = st.tuples(
    st.text(UNRESERVED, min_size=1, max_size=4), st.lists(st.one_of(st.sampled_from(UNRESERVED), ESCAPED))
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
        assert normalized.split("&") == [normalize_percent(param) for param in query.split("&")]


@given(PATH.filter(lambda p: p not in ("", "/")), st.booleans())
def test_non_root_trailing_slash_preserved(path: str, slash: bool) -> None:
    path = remove_dot_segments(normalize_percent(path)).rstrip("/") + ("/" if slash else "")
    if path in ("", "/"):
        return
    key = normalize_url(f"http://example.com{path}")
    assert key.endswith("/") == slash
    assert check_url(key).path == path
