"""The address rule over HTTP, on both stores: webhook and supplier URLs on non-public
addresses, however spelt, are refused at registration; a webhook host is resolved once
before each attempt and the connection goes to the address that was checked."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest

from engine.settings import Settings
from tests.conftest import caught_up
from tests.e2e.test_webhooks_api import FAST, buy, register
from tests.e2e.webhook_receiver import Receiver

CHECKED = "93.184.215.14"  # a public address: what the name resolves to when checked

SPELLINGS = ["http://2130706433/", "http://0x7f000001/", "http://127.1/", "http://0/",
             "http://①②⑦.0.0.1/", "http://[::127.0.0.1]/", "http://[64:ff9b::7f00:1]/",
             "http://[2002:7f00:1::]/", "http://169.254.169.254/", "http://[::ffff:a9fe:a9fe]/",
             "http://0251.0376.0251.0376/", "http://localhost./"]


@pytest.fixture
def settings(quanyi_env: dict[str, str]) -> Settings:
    return Settings.from_env({**quanyi_env, **FAST,
                              "QUANYI_WEBHOOK_ALLOW_PRIVATE_URLS": "false"})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiving = Receiver()
    yield receiving
    receiving.down()


@pytest.mark.parametrize("url", SPELLINGS)
def test_a_webhook_url_on_a_non_public_address_is_refused_however_spelt(client, keys, url):
    answer = client.post("/v1/webhooks", headers=keys["app"],
                         json={"url": url, "event_types": ["order.delivered"]})
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "validation_error"
    assert client.get("/v1/webhooks", headers=keys["app"]).json()["items"] == []


@pytest.mark.parametrize("endpoint", SPELLINGS + ["http://127.0.0.1:8700"])
def test_a_supplier_endpoint_on_a_non_public_address_is_refused(client, keys, endpoint):
    supplier_id = f"sup-{uuid.uuid4().hex[:8]}"
    answer = client.post("/v1/suppliers", headers=keys["admin"], json={
        "supplier_id": supplier_id, "name": "Metadata", "adapter": "http-json",
        "endpoint": endpoint, "credentials": {"api_key": "k", "callback_secret": "s"}})
    assert answer.status_code == 422, answer.text
    assert "endpoint" in answer.json()["detail"]
    assert client.get(f"/v1/suppliers/{supplier_id}", headers=keys["admin"]).status_code == 404


@pytest.fixture
def rebinding(monkeypatch, receiver) -> list[str]:
    """``rebind.example`` resolves to a public address the first time it is asked, to
    127.0.0.1 afterwards; a connection to the public address reaches the receiver (it
    stands for the real one). The hosts connected to are listed."""
    real_lookup, real_connect = socket.getaddrinfo, socket.create_connection
    asked: list[str] = []
    connected: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "rebind.example":
            asked.append(host)
            host = CHECKED if len(asked) == 1 else "127.0.0.1"
        return real_lookup(host, port, *args, **kwargs)

    def create_connection(address, *args, **kwargs):
        connected.append(address[0])
        if address[0] == CHECKED:
            address = ("127.0.0.1", receiver.port)
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    return connected


def test_a_delivery_connects_to_the_address_that_was_checked(client, keys, runtime, product,
                                                             receiver, rebinding):
    url = f"http://rebind.example:{receiver.port}/hooks"
    register(client, keys["app"], url)
    caught_up(runtime)
    _, order = buy(client, keys, product)
    (told,) = receiver.wait_for(1)
    assert told.data["order_id"] == order["order_id"]
    assert told.headers["host"] == f"rebind.example:{receiver.port}"
    assert rebinding == [CHECKED]  # never to the name again, so never to 127.0.0.1
