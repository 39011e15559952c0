"""The address rule for URLs the server calls on its own (webhook receivers, suppliers): the
guard against server-side request forgery.

A host is read the way the resolver reads it, and only then judged:

    host ──IDNA (NFKC: full-width, circled digits), lower case, trailing dots──▶ name
    name ──IPv6 literal, or an inet_aton form (decimal, hex, octal, 127.1)──▶ address
    IPv6 address ──mapped, compatible (::/96), NAT64, 6to4, Teredo──▶ its IPv4 too
    every address ──public?──▶ accepted, or refused

Public means globally routable unicast: not loopback, private, link-local (the cloud
metadata address 169.254.169.254), shared, multicast, reserved or unspecified, nor an IPv6
form that carries such an IPv4 address (the well-known NAT64 prefix 64:ff9b::/96 is judged
by the IPv4 address it carries alone; the IPv4-compatible ::/96 is reserved). The local-use NAT64 prefix 64:ff9b:1::/48 is
refused whatever it embeds: it leads into a local network by definition.

A name is judged by every address it resolves to. ``pin`` resolves a URL's host once, checks
what it got, and hands back the URL with the checked address in place of the name (and the
name for the Host header and TLS), so nothing can point the name elsewhere between the check
and the connection (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
import string
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from engine.kernel.errors import AddressRefused, ValidationFailed

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

LOCAL_NAMES = ("localhost", "localhost.localdomain")
DEFAULT_PORTS = {"http": 80, "https": 443}
INET_ATON_CHARACTERS = frozenset(string.hexdigits + "xX.")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
COMPATIBLE = ipaddress.ip_network("::/96")  # IPv4-compatible (deprecated), :: and ::1 too


def host_name(host: str, field: str = "url") -> str:
    """The name the resolver looks up for ``host``: IDNA-encoded (which folds full-width
    and circled digits to ASCII), lower case, without brackets or trailing dots."""
    bare = host.strip("[]")
    if ":" in bare:  # an IPv6 literal: IDNA does not apply
        return bare.lower()
    try:
        name = bare.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValidationFailed(f"{field}'s host is not a valid host name") from None
    return name.lower().rstrip(".")


def literal_address(name: str) -> Address | None:
    """The address a name spells, as the resolver reads numbers (an IPv6 literal, a dotted
    quad, or inet_aton's decimal, hex, octal and short forms); None for a real name."""
    try:
        return ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        pass
    if name and set(name) <= INET_ATON_CHARACTERS:
        try:
            return ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return None
    return None


def is_public(address: Address) -> bool:
    """Whether a connection to the address leaves for the public internet."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in LOCAL_NAT64:
            return False
        if address in NAT64:  # a NAT64 gateway connects to the IPv4 address it carries
            return is_public(ipaddress.IPv4Address(address.packed[-4:]))
        if any(not is_public(inner) for inner in embedded_ipv4(address)):
            return False
    return address.is_global and not (address.is_multicast or address.is_reserved
                                      or address.is_unspecified or address.is_loopback
                                      or address.is_link_local)


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, NAT64, 6to4,
    Teredo's server and client), which a gateway or the kernel would connect to."""
    found = [address.ipv4_mapped, address.sixtofour]
    if address in COMPATIBLE:
        found.append(ipaddress.IPv4Address(address.packed[-4:]))
    if address.teredo is not None:
        found += list(address.teredo)
    return [inner for inner in found if inner is not None]


def check_host(host: str, field: str = "url") -> None:
    """Refuse (ValidationFailed) a host that names this machine or a non-public address."""
    name = host_name(host, field)
    if name in LOCAL_NAMES or name.endswith(".localhost"):
        raise ValidationFailed(f"{field} must name a public host, not this machine")
    address = literal_address(name)
    if address is not None and not is_public(address):
        raise ValidationFailed(f"{field} must name a public address, not {address}")


@dataclass(frozen=True)
class Pinned:
    """Where to connect for a URL: ``url`` names the checked address (or, where private
    addresses are allowed, the normalised name); ``host`` is what the Host header and TLS
    (SNI and the certificate's name) must say instead."""

    url: str
    host: str | None = None
    tls_name: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Host": self.host} if self.host else {}

    @property
    def extensions(self) -> dict[str, str]:
        """As httpx takes the name TLS must use when the URL names an address."""
        return {"sni_hostname": self.tls_name} if self.tls_name else {}


def pin(url: str, *, allow_private: bool) -> Pinned:
    """Resolve the URL's host once and check every address (AddressRefused when one is not
    public or there is none); the URL to connect to, naming the first address."""
    parts = urlsplit(url)
    try:
        name = host_name(parts.hostname or "")
    except ValidationFailed as exc:  # stored before hosts were checked so: never sent
        raise AddressRefused(exc.detail) from None
    if allow_private:
        return Pinned(_with_host(parts, _bracketed(name)))
    port = parts.port or DEFAULT_PORTS.get(parts.scheme, 443)
    addresses = resolve(name, port)
    refused = [a for a in addresses if not is_public(a)]
    if not addresses or refused:
        raise AddressRefused(f"the host resolves to {refused[0] if refused else 'nothing'}, "
                             "not a public address")
    host = _bracketed(name) + (f":{parts.port}" if parts.port else "")
    literal = literal_address(name)
    tls_name = str(literal) if literal is not None else name
    return Pinned(_with_host(parts, _bracketed(str(addresses[0]))), host,
                  tls_name if parts.scheme == "https" else None)


def resolve(name: str, port: int) -> list[Address]:
    """Every address the name resolves to, in the resolver's order ([] when none)."""
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0])
                              for info in infos))


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _with_host(parts: SplitResult, host: str) -> str:
    netloc = host + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()
