"""A supplier's credentials are stored only sealed: not in the event store, not in the read
models, not in a log line, not in the public form of its event; and they still open."""

from __future__ import annotations

import dataclasses
import logging
import uuid

import pytest

from engine.eventstore.transcoder import public_fields
from engine.kernel.money import Money
from engine.topups.supplier_port import Outcome, TopupRequest
from engine.topups.suppliers import Supplier
from supplier_sim import SimConfig, SimServer
from tests.conftest import caught_up
from tests.integration.helpers import define_product
from tests.integration.test_secrets_at_rest import stored_bytes

API_KEY = "CLEAR-API-KEY-" + uuid.uuid4().hex
CALLBACK_SECRET = "CLEAR-CALLBACK-SECRET-" + uuid.uuid4().hex


@pytest.fixture
def settings(settings):
    """The simulator listens on 127.0.0.1: private supplier addresses are allowed here."""
    return dataclasses.replace(settings, supplier_allow_private_urls=True)


def test_supplier_credentials_appear_nowhere_in_storage_or_logs(runtime, quanyi_env, caplog):
    caplog.set_level(logging.DEBUG)
    suppliers = runtime.engine.suppliers
    with SimServer(SimConfig(api_key=API_KEY, callback_secret=CALLBACK_SECRET)) as sim:
        suppliers.register(
            supplier_id="sup-rest", name="At rest", adapter="http-json", endpoint=sim.url,
            credentials={"api_key": API_KEY, "callback_secret": CALLBACK_SECRET},
            actor="test")
        sku = define_product(runtime, delivery="topup", price=5000)
        suppliers.set_offers(sku, [], actor="test")
        report = suppliers.adapter_for("sup-rest").place(
            TopupRequest("att-rest-1", "CM-50", "13800000001", Money(5000, "CNY")))
    assert report.outcome is Outcome.SUCCEEDED  # the sealed credentials opened and worked
    caught_up(runtime)
    blob = stored_bytes(runtime, quanyi_env)
    # the dump is real, and shows event state (in clear, or as hex on PostgreSQL)
    assert b"At rest" in blob or b"At rest".hex().encode() in blob
    for secret in (API_KEY, CALLBACK_SECRET):
        assert secret.encode() not in blob
        assert secret.encode().hex().encode() not in blob  # PostgreSQL dumps bytea as hex
        assert secret not in caplog.text
    assert b"CLEAR-" not in blob


def test_the_public_form_of_a_registration_has_no_sealed_credentials(runtime):
    supplier = runtime.engine.suppliers.register(
        supplier_id="sup-pub", name="Public", adapter="http-json",
        endpoint="https://supplier.example", actor="test",
        credentials={"api_key": API_KEY, "callback_secret": CALLBACK_SECRET})
    [registered] = runtime.store.events.get(supplier.id)
    assert isinstance(registered, Supplier.Created)
    shown = public_fields(registered)
    assert "sealed_credentials" not in shown
    assert shown["credential_names"] == ["api_key", "callback_secret"]
