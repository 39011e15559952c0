"""Where a webhook may be sent: the guard against server-side request forgery.

A webhook URL is chosen by an API client, and the platform then makes requests to it from
inside its own network. So by default a URL must be http(s), carry no credentials, and name
a host whose every address is public (engine/kernel/addresses.py: hosts are read as the resolver
reads them, so 2130706433, 0x7f000001, 127.1 and [::ffff:127.0.0.1] are all loopback). The
literal check runs when an endpoint is registered; before every delivery the name is
resolved once, every address checked, and the connection made to the checked address, since
a name can be pointed elsewhere later (and redirects are never followed).
``QUANYI_WEBHOOK_ALLOW_PRIVATE_URLS`` lifts the address rule, for tests and private networks.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from engine.kernel.addresses import check_host, host_name
from engine.kernel.errors import ValidationFailed

MAX_URL = 2000
SCHEMES = ("http", "https")


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
        check_host(parts.hostname)
    else:
        host_name(parts.hostname)  # a host no resolver can look up is refused all the same
    return url
