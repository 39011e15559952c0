"""Where a webhook may be sent: the guard against server-side request forgery.

A webhook URL is chosen by an API client, and the platform then makes requests to it from
inside its own network. So by default a URL must be http(s), carry no credentials, and name
a host whose every address is public: loopback, private, link-local (cloud metadata at
169.254.169.254), shared, multicast and reserved ranges are refused. The literal check runs
when an endpoint is registered; the resolved check runs again before every delivery, since
a name can be pointed elsewhere later (and redirects are never followed).
``QUANYI_WEBHOOK_ALLOW_PRIVATE_URLS`` lifts the address rule, for tests and private networks.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from engine.errors import ValidationFailed

MAX_URL = 2000
SCHEMES = ("http", "https")
LOCAL_NAMES = ("localhost", "localhost.localdomain")


def check_url(url: str, *, allow_private: bool) -> str:
    """The URL, if a webhook may be registered to it; else ValidationFailed saying why."""
    if not isinstance(url, str) or not 1 <= len(url) <= MAX_URL or not url.isprintable() \
            or any(c.isspace() for c in url):
        raise ValidationFailed(f"url must be 1-{MAX_URL} printable characters without spaces")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port out of range raises here
    except ValueError:
        raise ValidationFailed("url is not a valid URL") from None
    if parts.scheme not in SCHEMES:
        raise ValidationFailed("url must be an http:// or https:// URL")
    if not parts.hostname:
        raise ValidationFailed("url must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValidationFailed("url must not carry credentials: the secret signs each delivery")
    if parts.fragment:
        raise ValidationFailed("url must not have a fragment")
    if not allow_private:
        _check_host(parts.hostname)
    return url


def _check_host(host: str) -> None:
    if host.lower().rstrip(".") in LOCAL_NAMES or host.lower().endswith(".localhost"):
        raise ValidationFailed("url must name a public host, not this machine")
    address = _literal(host)
    if address is not None and not address.is_global:
        raise ValidationFailed(f"url must name a public address, not {address}")


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def resolves_publicly(url: str) -> bool:
    """Whether every address the URL's host resolves to now is public (the check run before
    each delivery); False when it does not resolve."""
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    addresses = {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}
    return bool(addresses) and all(a.is_global for a in addresses)
