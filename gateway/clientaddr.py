"""The client's address: ``X-Forwarded-For`` is believed only from ``CLICKMUNCHER_TRUSTED_PROXIES``.

The gateway does not store client addresses with clicks (counts need none, and an address is personal data);
it uses this only in the log line of a refused request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_address(peer: str | None, forwarded_for: Sequence[str], proxies: tuple[Network, ...]) -> str:
    """The first address, walking ``X-Forwarded-For`` from the right, not in a trusted proxy network.

    Without a trusted peer the header is ignored and the peer is the client.
    """
    client = peer or "-"
    if not proxies or not _trusted(client, proxies):
        return client
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        client = hop
        if not _trusted(hop, proxies):
            break
    return client
