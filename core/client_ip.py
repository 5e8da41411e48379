"""The client's address: one rule for lockout, throttles, audit and logs.

Behind an ingress the socket peer (``REMOTE_ADDR``) is the ingress pod, not the client.
The ingress appends the address it saw to ``X-Forwarded-For``; anything to the left of
that was written by the client and proves nothing. So the header is read right to left,
skipping hops that are trusted proxies (``DDS_TRUSTED_PROXIES``, CIDRs), and the first
untrusted hop is the client. A request whose peer is not a trusted proxy is taken at its
socket address, whatever headers it sends: a client cannot pick its own address.

Works on a Django request's ``META`` and on a raw WSGI environ (gunicorn's access log),
which are the same mapping.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from functools import lru_cache

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in spec
                 if item.strip())


def trusted_networks() -> tuple[Network, ...]:
    return _networks(tuple(settings.DDS_TRUSTED_PROXIES))


def _address(value: str) -> Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[v6]:port"
        value = value[1:value.index("]")]
    elif value.count(":") == 1:  # "v4:port"
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def _trusted(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address in network for network in networks)


def is_trusted_peer(meta: Mapping) -> bool:
    """Whether the socket peer of this request is one of the trusted proxies."""
    peer = _address(str(meta.get("REMOTE_ADDR") or ""))
    return peer is not None and _trusted(peer, trusted_networks())


def client_ip_from_meta(meta: Mapping) -> str | None:
    peer = _address(str(meta.get("REMOTE_ADDR") or ""))
    if peer is None:
        return None
    networks = trusted_networks()
    if not _trusted(peer, networks):
        return str(peer)
    client = peer
    hops = str(meta.get("HTTP_X_FORWARDED_FOR") or "").split(",")
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # garbage was written by someone untrusted: stop at the last good hop
        client = address
        if not _trusted(address, networks):
            break
    return str(client)


def client_ip(request) -> str | None:
    """The client's address for a Django or DRF request (see the module docstring)."""
    request = getattr(request, "_request", request)
    return client_ip_from_meta(request.META)


class TrustedProxyMiddleware:
    """Drops forwarding headers that did not come from a trusted proxy.

    Django trusts ``X-Forwarded-Proto`` (SECURE_PROXY_SSL_HEADER) from whoever sends it;
    here it only counts when the peer is the ingress. Must run first.
    """

    FORWARDING_HEADERS = ("HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_FOR",
                          "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT", "HTTP_FORWARDED")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not is_trusted_peer(request.META):
            for name in self.FORWARDING_HEADERS:
                request.META.pop(name, None)
        return self.get_response(request)
