"""Destination URLs: structural checks and normalization (RFC 3986 §6.2.2, safe rules only).

:func:`check_url` rejects what a redirect must never follow; :func:`normalize_url` turns an accepted URL
into the click's key. Normalization lowercases scheme and host, drops the host's trailing dot, the default
port and the fragment, turns an empty path into ``/``, percent-encodes the characters RFC 3986 allows in
neither a path nor a query (as browsers send them), uppercases percent-encoding hex, decodes percent-encoded
unreserved characters and removes dot segments. It never reorders or drops query parameters and never touches
a trailing slash on a non-root path. :func:`ascii_url` turns an internationalized URL into the ASCII form
browsers send.
"""

from __future__ import annotations

import ipaddress
import re
import string
from dataclasses import dataclass
from urllib.parse import quote

import idna

from clickmuncher.records import MAX_URL_CHARS

DEFAULT_PORTS = {"http": "80", "https": "443"}
UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL, C1
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
# Printable ASCII that RFC 3986 allows in no path or query (space, backslash and controls are refused before):
# browsers send most of them percent-encoded (WHATWG URL's path and query percent-encode sets), servers decode
# both forms alike, so the key holds the encoded form and `/a{b}` and `/a%7Bb%7D` are one URL. In a query,
# browsers also encode `'` (the special-query set), so `?q='` and `?q=%27` are sent identically.
_NOT_RFC3986 = '"<>[]^`{|}'
_PATH_ESCAPES = str.maketrans({c: f"%{ord(c):02X}" for c in _NOT_RFC3986})
_QUERY_ESCAPES = str.maketrans({c: f"%{ord(c):02X}" for c in _NOT_RFC3986 + "'"})


class Rejected(ValueError):
    """A destination that is refused; ``reason`` is a short code (a metric label), ``detail`` says why."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.status = status
        self.reason = reason
        self.detail = detail


def bad_request(reason: str, detail: str) -> Rejected:
    return Rejected(400, reason, detail)


@dataclass(frozen=True, slots=True)
class UrlParts:
    """An absolute ``http(s)`` URL in its RFC 3986 components (``query``, ``fragment``: None if absent)."""

    scheme: str
    host: str
    port: str
    path: str
    query: str | None
    fragment: str | None

    def unsplit(self) -> str:
        text = f"{self.scheme}://{self.host}"
        if self.port:
            text += f":{self.port}"
        text += self.path
        if self.query is not None:
            text += f"?{self.query}"
        if self.fragment is not None:
            text += f"#{self.fragment}"
        return text


def check_url(url: str) -> UrlParts:
    """The parts of ``url`` if it is an acceptable redirect destination; raises :class:`Rejected` (400)."""
    _check_characters(url)
    scheme, sep, rest = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        raise bad_request("bad_scheme", "the URL must start with http:// or https://")
    if scheme.lower() not in DEFAULT_PORTS:
        raise bad_request("bad_scheme", f"scheme {scheme!r} is not http or https")
    authority, path, query, fragment = _split_rest(rest)
    if "@" in authority:
        raise bad_request("userinfo", "user information (@) in the host part is not allowed")
    host, port = _split_authority(authority)
    return UrlParts(scheme, host, port, path, query, fragment)


def _check_characters(url: str) -> None:
    if not url:
        raise bad_request("missing_u", "the u parameter is empty")
    if len(url) > MAX_URL_CHARS:
        raise bad_request("too_long", f"the URL has {len(url)} characters, more than {MAX_URL_CHARS}")
    if "\r" in url or "\n" in url:
        raise bad_request("crlf", "the URL contains CR or LF")
    if _CONTROL.search(url):
        raise bad_request("control_char", "the URL contains a control character")
    if not url.isascii():
        raise bad_request("non_ascii", "the URL contains non-ASCII characters; percent-encode them")
    if " " in url:
        raise bad_request("whitespace", "the URL contains a space")
    if "\\" in url:
        raise bad_request("backslash", "the URL contains a backslash")


def _split_rest(rest: str) -> tuple[str, str, str | None, str | None]:
    """``authority``, ``path``, ``query``, ``fragment`` of what follows ``scheme://``."""
    rest, hash_sep, fragment = rest.partition("#")
    rest, query_sep, query = rest.partition("?")
    authority, slash, path = rest.partition("/")
    return authority, slash + path, query if query_sep else None, fragment if hash_sep else None


def _split_authority(authority: str) -> tuple[str, str]:
    if authority.startswith("["):
        host, bracket, port_part = authority.partition("]")
        host += bracket
        if not bracket or (port_part and not port_part.startswith(":")):
            raise bad_request("bad_host", "malformed IPv6 literal")
        port = port_part[1:]
    else:
        host, _, port = authority.partition(":")
    if not host:
        raise bad_request("no_host", "the URL has no host")
    _check_host(host)
    if port and (not port.isdigit() or not 0 < int(port) < 65536):
        raise bad_request("bad_port", f"port {port!r} is not a number from 1 to 65535")
    return host, port


def _check_host(host: str) -> None:
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise bad_request("bad_host", f"{host!r} is not a valid IPv6 literal") from None
        return
    name = host.lower().removesuffix(".")
    labels = name.split(".")
    if not name or not all(_LABEL.match(label) for label in labels):
        raise bad_request("bad_host", f"{host!r} is not a valid host name")
    if labels[-1].isdigit() or labels[-1].startswith("0x"):
        # Numeric last label: only a dotted-quad IPv4 address, never 0x7f.1 / 2130706433 style aliases.
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            raise bad_request("bad_host", f"{host!r} is not a valid IPv4 address") from None


def normalize_url(url: str) -> str:
    """The normalized form of an accepted ``url`` (the click's key); raises :class:`Rejected` otherwise."""
    return normalize_parts(check_url(url))


def normalize_parts(parts: UrlParts) -> str:
    """The normalized form of the parts :func:`check_url` returned."""
    scheme = parts.scheme.lower()
    port = str(int(parts.port)) if parts.port else ""
    if port == DEFAULT_PORTS[scheme]:
        port = ""
    host = parts.host.lower().removesuffix(".")  # `example.com.` is the DNS name `example.com`
    path = remove_dot_segments(normalize_percent(parts.path.translate(_PATH_ESCAPES))) or "/"
    query = None if parts.query is None else normalize_percent(parts.query.translate(_QUERY_ESCAPES))
    return UrlParts(scheme, host, port, path, query, None).unsplit()


def ascii_url(url: str) -> str:
    """``url`` as browsers send it: an internationalized host IDNA-encoded (``xn--``), other non-ASCII
    characters percent-encoded as UTF-8; an ASCII ``url`` is returned unchanged. Raises :class:`Rejected`."""
    if url.isascii():
        return url
    scheme, sep, rest = url.partition("://")
    authority, path, query, fragment = _split_rest(rest)
    host, colon, port = authority.rpartition(":") if _has_port(authority) else (authority, "", "")
    try:
        host = idna.encode(host, uts46=True).decode("ascii") if not host.isascii() else host
    except idna.IDNAError as e:
        raise bad_request("bad_host", f"{host!r} is not a valid internationalized host name: {e}") from e
    text = f"{scheme}{sep}{host}{colon}{port}{_quote_non_ascii(path)}"
    if query is not None:
        text += f"?{_quote_non_ascii(query)}"
    return text if fragment is None else f"{text}#{_quote_non_ascii(fragment)}"


def _has_port(authority: str) -> bool:
    return ":" in authority.rsplit("]", 1)[-1]


def _quote_non_ascii(text: str) -> str:
    return "".join(c if c.isascii() else quote(c, safe="") for c in text)


def normalize_percent(text: str) -> str:
    """Uppercases percent-encoding hex and decodes percent-encoded unreserved characters."""

    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in UNRESERVED else match.group(0).upper()

    return _PERCENT.sub(fix, text)


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 for an absolute path."""
    output: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    result = "/" + "/".join(output)
    if path.rsplit("/", 1)[-1] in (".", "..") and not result.endswith("/"):
        result += "/"
    return result if path else ""
