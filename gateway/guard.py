"""The open-redirect guard: a destination is accepted only with a valid signature or an allowed host."""

from __future__ import annotations

import re
from dataclasses import dataclass

from clickmuncher.settings import ConfigError, Settings
from gateway.signing import verify
from gateway.urls import Rejected, check_url

_ENTRY = re.compile(r"^(\*\.)?[a-z0-9_.:\[\]-]+$")


@dataclass(frozen=True, slots=True)
class Guard:
    """Decides which destinations the gateway redirects to (built once from the settings)."""

    signing_key: bytes | None
    exact_hosts: frozenset[str]
    wildcard_suffixes: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> Guard:
        """Raises :class:`ConfigError` when neither a signing key nor an allow-list is configured."""
        key = settings.signing_key.get_secret_value() if settings.signing_key is not None else None
        if key is not None and not key:
            raise ConfigError("CLICKMUNCHER_SIGNING_KEY is set but empty")
        entries = [entry.strip().lower() for entry in settings.allowed_hosts]
        if key is None and not entries:
            raise ConfigError(
                "neither CLICKMUNCHER_SIGNING_KEY nor CLICKMUNCHER_ALLOWED_HOSTS is set: "
                "the gateway would be an open redirect"
            )
        for entry in entries:
            if not _ENTRY.match(entry) or entry in ("*.", "*") or entry.startswith("."):
                raise ConfigError(f"CLICKMUNCHER_ALLOWED_HOSTS: {entry!r} is not a host or *.domain")
        exact = frozenset(e.removesuffix(".") for e in entries if not e.startswith("*."))
        suffixes = tuple(e[1:].removesuffix(".") for e in entries if e.startswith("*."))
        return cls(key.encode() if key is not None else None, exact, suffixes)

    def host_allowed(self, host: str) -> bool:
        """``example.com`` matches itself; ``*.example.com`` matches every subdomain, not the apex."""
        name = host.lower().removesuffix(".")
        return name in self.exact_hosts or any(name.endswith(suffix) for suffix in self.wildcard_suffixes)

    def check(self, url: str, sig: str | None) -> None:
        """Raises :class:`Rejected` (400 malformed, 403 not allowed) unless ``url`` may be redirected to."""
        parts = check_url(url)
        if self.host_allowed(parts.host):
            return
        if sig is None:
            raise Rejected(
                403, "host_not_allowed", f"host {parts.host!r} is not allowed and the link is unsigned"
            )
        if self.signing_key is None or not verify(url, sig, self.signing_key):
            raise Rejected(403, "bad_signature", "the signature does not match the URL")
