"""The open-redirect guard: a destination is accepted only with a valid signature or an allowed host.

Built once from the settings, which it validates: signing keys of at least 32 bytes (current and retired),
allow-list entries that are host names without a port, and no ``*.`` wildcard over a public suffix
(``*.com``, ``*.co.uk``, ``*.github.io``: every host under it would be allowed unsigned).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from publicsuffixlist import PublicSuffixList

from clickmuncher.settings import ConfigError, GatewaySettings
from clickmuncher.urls import Rejected, UrlParts, check_url, normalize_parts
from gateway.signing import MIN_KEY_BYTES, SIGNATURE_CHARS, verify

ALLOWED = "CLICKMUNCHER_ALLOWED_HOSTS"


@dataclass(frozen=True, slots=True)
class Guard:
    """Decides which destinations the gateway redirects to, and their click keys."""

    signing_keys: tuple[bytes, ...]  # the current key first, then the retired ones
    exact_hosts: frozenset[str]
    wildcard_suffixes: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> Guard:
        """Raises :class:`ConfigError` on a weak key, a bad allow-list entry, or neither keys nor list."""
        keys = signing_keys(settings)
        entries = [entry.strip().lower() for entry in settings.allowed_hosts]
        if not keys and not entries:
            raise ConfigError(
                "neither CLICKMUNCHER_SIGNING_KEY nor CLICKMUNCHER_ALLOWED_HOSTS is set: "
                "the gateway would be an open redirect"
            )
        hosts = [_allow_list_entry(entry) for entry in entries]
        exact = frozenset(h for h in hosts if not h.startswith("*."))
        suffixes = tuple(h[1:] for h in hosts if h.startswith("*."))
        return cls(keys, exact, suffixes)

    def host_allowed(self, host: str) -> bool:
        """``example.com`` matches itself; ``*.example.com`` matches every subdomain, not the apex."""
        name = host.lower().removesuffix(".")
        return name in self.exact_hosts or any(name.endswith(suffix) for suffix in self.wildcard_suffixes)

    def check(self, url: str, sig: str | None) -> UrlParts:
        """The parts of ``url``; raises :class:`Rejected` (400 malformed, 403 not allowed) unless it may be
        redirected to."""
        parts = check_url(url)
        if self.host_allowed(parts.host):
            return parts
        if sig is None:
            raise Rejected(
                403, "host_not_allowed", f"host {parts.host!r} is not allowed and the link is unsigned"
            )
        if not self.signing_keys or not verify(url, sig, self.signing_keys):
            raise Rejected(403, "bad_signature", "the signature does not match the URL")
        return parts

    def accept(self, url: str, sig: str | None) -> str:
        """The click key (normalized URL) of an accepted ``url``; raises :class:`Rejected` otherwise."""
        return normalize_parts(self.check(url, sig))

    def cached(self, size: int) -> Callable[[str, str | None], str]:
        """:meth:`accept` behind a bounded LRU keyed by (URL, signature): clicks are Zipf-distributed, so
        most redirects skip parsing, normalization and the HMAC. Refusals raise, so they are never cached.
        The verdict depends on nothing else (keys and allow-list are fixed for the process's life).

        Only URLs the gateway accepts (at most 2048 characters) and signatures of the valid length are
        cache keys, so junk in ``s`` (ignored for an allowed host) cannot fill the cache with large entries.
        """
        if not size:
            return self.accept
        lookup = functools.lru_cache(maxsize=size)(self.accept)

        def accept(url: str, sig: str | None) -> str:
            if sig is not None and len(sig) != SIGNATURE_CHARS:
                return self.accept(url, sig)
            return lookup(url, sig)

        accept.cache_info = lookup.cache_info  # type: ignore[attr-defined]
        return accept


def signing_keys(settings: GatewaySettings) -> tuple[bytes, ...]:
    """The current key, then the retired ones (``CLICKMUNCHER_SIGNING_KEYS_OLD``), as UTF-8 bytes.

    Raises :class:`ConfigError` for a key under :data:`MIN_KEY_BYTES`, or retired keys without a current one.
    """
    current = settings.signing_key.get_secret_value() if settings.signing_key is not None else None
    old_value = settings.signing_keys_old.get_secret_value() if settings.signing_keys_old else ""
    old = [key.strip() for key in old_value.split(",") if key.strip()]
    if current is None:
        if old:
            raise ConfigError("CLICKMUNCHER_SIGNING_KEYS_OLD is set without CLICKMUNCHER_SIGNING_KEY")
        return ()
    named = [("CLICKMUNCHER_SIGNING_KEY", current.encode())]
    named += [("CLICKMUNCHER_SIGNING_KEYS_OLD", key.encode()) for key in old]
    for name, key in named:
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(
                f"{name}: a key has {len(key)} bytes, fewer than {MIN_KEY_BYTES} (one signed link would let "
                "anyone find it offline); generate one with: python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'"
            )
    return tuple(key for _, key in named)


def _allow_list_entry(entry: str) -> str:
    """``entry`` without a trailing dot; raises :class:`ConfigError` unless it is a host or ``*.domain``."""
    name = entry.removeprefix("*.").removesuffix(".")
    if "/" in name or "@" in name:
        raise ConfigError(f"{ALLOWED}: {entry!r} is not a host name or *.domain")
    if ":" in name.rsplit("]", 1)[-1]:
        raise ConfigError(f"{ALLOWED}: {entry!r} has a port; list the host alone (every port matches)")
    try:
        parts = check_url(f"http://{name}/")
    except Rejected:
        raise ConfigError(f"{ALLOWED}: {entry!r} is not a host name or *.domain") from None
    if parts.host != name or not name:
        raise ConfigError(f"{ALLOWED}: {entry!r} is not a host name or *.domain")
    if entry.startswith("*."):
        if name.startswith("[") or name.rsplit(".", 1)[-1].isdigit():
            raise ConfigError(f"{ALLOWED}: {entry!r}: a wildcard needs a domain name, not an address")
        if _public_suffixes().is_public(name):
            raise ConfigError(
                f"{ALLOWED}: {entry!r} would allow every host under the public suffix {name!r} "
                "(anyone can register one); list your own domains"
            )
        return f"*.{name}"
    return name


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    # The snapshot bundled with the package (no network); unknown TLDs (`internal`, `lan`) are not public.
    return PublicSuffixList(accept_unknown=False)
