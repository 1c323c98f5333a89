"""Signed links: HMAC-SHA256 over the exact ``u`` value, keyed with ``CLICKMUNCHER_SIGNING_KEY`` (UTF-8).

Sites that build links in Python call :func:`sign_url`; the gateway calls :func:`verify`. A signature is sent
as URL-safe base64 without padding: exactly 43 characters, nothing else is accepted (so one digest has one
spelling). Keys hold at least :data:`MIN_KEY_BYTES` bytes: a shorter key can be found offline from one
signed link, and with it any destination signed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from urllib.parse import quote, urlsplit, urlunsplit

DIGEST_BYTES = 32
SIGNATURE_CHARS = 43  # unpadded base64url of the digest
MIN_KEY_BYTES = 32
# 43 base64url characters carry 258 bits; the last one's two low bits are padding and must be zero, or four
# spellings would decode to one digest.
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]")


def _key_bytes(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else key


def signature(url: str, key: str | bytes) -> str:
    """The signature of ``url`` (the exact ``u`` value) as URL-safe base64 without padding."""
    digest = hmac.new(_key_bytes(key), url.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def decode_signature(sig: str) -> bytes | None:
    """The digest of a signature in its one accepted form (43 characters of unpadded base64url), else None."""
    if not _SIGNATURE.fullmatch(sig):
        return None
    return base64.urlsafe_b64decode(sig + "=")


def verify(url: str, sig: str, keys: Sequence[str | bytes]) -> bool:
    """Whether ``sig`` signs ``url`` under one of ``keys`` (current first, then retired ones); each
    comparison takes constant time."""
    given = decode_signature(sig)
    if given is None:
        return False
    message = url.encode()
    digests = (hmac.new(_key_bytes(key), message, hashlib.sha256).digest() for key in keys)
    return any(hmac.compare_digest(given, digest) for digest in digests)


def sign_url(url: str, key: str | bytes, base: str = "http://127.0.0.1:8080/") -> str:
    """A redirect link through the gateway at ``base`` to ``url``: ``<base>?u=<url>&s=<signature>``.

    The parameters join a query ``base`` already has and go before its fragment, if any.
    """
    parts = urlsplit(base)
    added = f"u={quote(url, safe='')}&s={signature(url, key)}"
    query = f"{parts.query}&{added}" if parts.query else added
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, parts.fragment))
