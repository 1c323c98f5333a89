"""Signed links: HMAC-SHA256 over the exact ``u`` value, keyed with ``CLICKMUNCHER_SIGNING_KEY`` (UTF-8).

Sites that build links in Python call :func:`sign_url`; the gateway calls :func:`verify`. A signature is sent
as URL-safe base64 without padding (43 characters); 64 hex digits are accepted too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from urllib.parse import quote

DIGEST_BYTES = 32


def _key_bytes(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else key


def signature(url: str, key: str | bytes) -> str:
    """The signature of ``url`` (the exact ``u`` value) as URL-safe base64 without padding."""
    digest = hmac.new(_key_bytes(key), url.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def decode_signature(sig: str) -> bytes | None:
    """The digest bytes of a hex or URL-safe base64 signature; None if it is neither."""
    try:
        if len(sig) == 2 * DIGEST_BYTES:
            return bytes.fromhex(sig)
        raw = base64.urlsafe_b64decode(sig.rstrip("=") + "=" * (-len(sig.rstrip("=")) % 4))
    except (ValueError, binascii.Error):
        return None
    return raw if len(raw) == DIGEST_BYTES else None


def verify(url: str, sig: str, key: str | bytes) -> bool:
    """Whether ``sig`` signs ``url`` under ``key``; the comparison takes constant time."""
    given = decode_signature(sig)
    expected = hmac.new(_key_bytes(key), url.encode(), hashlib.sha256).digest()
    return given is not None and hmac.compare_digest(given, expected)


def sign_url(url: str, key: str | bytes, base: str = "http://127.0.0.1:8080/") -> str:
    """A redirect link through the gateway at ``base`` to ``url``: ``<base>?u=<url>&s=<signature>``."""
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}u={quote(url, safe='')}&s={signature(url, key)}"


def signed_link(url: str, key: str | bytes, base: str = "http://127.0.0.1:8080/") -> str:
    """The same as :func:`sign_url` (the name ``clickmuncher up`` uses)."""
    return sign_url(url, key, base)
