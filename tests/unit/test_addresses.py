"""The address rule for URLs the server calls: hosts read as the resolver reads them, IPv6
forms that carry an IPv4 address judged by it, and a name resolved once and pinned."""

from __future__ import annotations

import socket

import pytest

from engine.kernel.addresses import pin
from engine.kernel.errors import AddressRefused, ValidationFailed
from engine.webhooks.urls import check_url

LOOPBACK_SPELLINGS = [
    "http://2130706433/", "http://0x7f000001/", "http://127.1/", "http://0/",
    "http://①②⑦.0.0.1/", "http://[::127.0.0.1]/", "http://[64:ff9b::7f00:1]/",
    "http://[2002:7f00:1::]/", "http://0177.0.0.1/", "http://0x7f.1/", "http://127.0.0.1./",
    "http://１２７.０.０.１/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/",
    "http://[::1]/", "http://[::]/", "http://LOCALHOST./", "http://127.0.1/",
    "http://017700000001/", "http://0x7F.0.0.1:8080/hook",
]
OTHER_PRIVATE = [
    "http://[64:ff9b::a9fe:a9fe]/latest", "http://[2002:a9fe:a9fe::]/",  # metadata, embedded
    "http://[64:ff9b::a00:1]/", "http://[2002:c0a8:101::1]/", "http://[::10.0.0.1]/",
    "http://[64:ff9b:1::808:808]/",  # local-use NAT64: refused whatever it embeds
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo, client 192.0.2.45
    "http://2852039166/", "http://0xa9fea9fe/",  # 169.254.169.254
    "http://224.0.0.1/", "http://239.1.2.3/", "http://[ff02::1]/", "http://[ff0e::1]/",
    "http://100.64.0.1/", "http://[fe80::1]/", "http://[fc00::1]/", "http://240.0.0.1/",
    "http://192.0.0.1/", "http://198.18.0.1/",
]
PUBLIC = ["https://hooks.example.com/q", "http://8.8.8.8/", "http://134744072/",
          "http://[64:ff9b::808:808]/", "http://[2606:4700:4700::1111]/",
          "https://xn--bcher-kva.example/", "https://bücher.example/"]


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS + OTHER_PRIVATE)
def test_every_spelling_of_a_non_public_address_is_refused(url):
    with pytest.raises(ValidationFailed):
        check_url(url, allow_private=False)
    assert check_url(url, allow_private=True) == url


@pytest.mark.parametrize("url", PUBLIC)
def test_public_hosts_are_accepted(url):
    assert check_url(url, allow_private=False) == url


def test_a_host_no_resolver_can_look_up_is_refused_even_where_private_is_allowed():
    with pytest.raises(ValidationFailed):
        check_url("http://" + "a" * 64 + ".example/", allow_private=True)


@pytest.fixture
def resolver(monkeypatch):
    """A resolver answering each name with the next of its addresses: a name rebound
    after its first look-up. Addresses are looked up as the real resolver would."""
    answers: dict[str, list[str]] = {}
    asked: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        asked.append(host)
        if host in answers:
            address = answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
            return real(address, port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, asked


def test_a_name_is_resolved_once_and_the_checked_address_is_pinned(resolver):
    answers, asked = resolver
    answers["rebind.example"] = ["93.184.215.14", "127.0.0.1"]
    pinned = pin("https://rebind.example:8443/hooks?x=1", allow_private=False)
    assert pinned.url == "https://93.184.215.14:8443/hooks?x=1"
    assert pinned.headers == {"Host": "rebind.example:8443"}
    assert pinned.extensions == {"sni_hostname": "rebind.example"}
    assert asked == ["rebind.example"]


def test_a_name_resolving_to_any_private_address_is_refused(resolver, monkeypatch):
    answers, _ = resolver
    answers["split.example"] = ["127.0.0.1"]
    with pytest.raises(AddressRefused, match="127.0.0.1"):
        pin("http://split.example/", allow_private=False)


def test_a_name_that_does_not_resolve_is_refused():
    with pytest.raises(AddressRefused, match="nothing"):
        pin("http://does-not-exist.invalid/", allow_private=False)


def test_a_stored_url_whose_host_no_resolver_takes_is_refused_as_an_address():
    with pytest.raises(AddressRefused, match="host"):
        pin("http://" + "a" * 64 + ".example/", allow_private=True)


def test_an_ipv6_address_is_pinned_in_brackets(resolver):
    answers, _ = resolver
    answers["six.example"] = ["2606:4700:4700::1111"]
    pinned = pin("http://six.example/h", allow_private=False)
    assert pinned.url == "http://[2606:4700:4700::1111]/h"
    assert pinned.headers == {"Host": "six.example"} and pinned.extensions == {}


def test_where_private_addresses_are_allowed_the_url_keeps_its_normalised_name():
    assert pin("http://①②⑦.0.0.1:9/h", allow_private=True).url == "http://127.0.0.1:9/h"
    assert pin("http://localhost:9/h", allow_private=True).headers == {}
