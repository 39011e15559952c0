"""API keys on both stores: revocation seen by every process at once, expiry, bindings,
listing, and keys issued before bindings existed."""

import time
from datetime import timedelta

import orjson
import pytest
from eventsourcing.persistence import StoredEvent

from engine.kernel.errors import Forbidden, InvalidState, NotFound, ValidationFailed
from engine.kernel.ids import api_key_id
from engine.keys import utc_now
from runtime import Runtime


def test_revocation_in_one_process_is_refused_at_once_by_another(runtime, settings):
    issued = runtime.engine.keys.issue(role="app", name="shop")
    other = Runtime.open(settings)  # a second server process over the same store
    try:
        assert other.engine.keys.authenticate(issued.secret) is not None
        runtime.engine.keys.revoke(issued.principal.key_id, actor="test")
        assert other.engine.keys.authenticate(issued.secret) is None
    finally:
        other.close()


def test_expired_key_is_refused(runtime):
    issued = runtime.engine.keys.issue(role="app", name="temp",
                                       expires_at=utc_now() + timedelta(seconds=1))
    assert runtime.engine.keys.authenticate(issued.secret) is not None
    time.sleep(1.1)
    assert runtime.engine.keys.authenticate(issued.secret) is None


def test_expiry_in_the_past_is_refused(runtime):
    with pytest.raises(ValidationFailed):
        runtime.engine.keys.issue(role="app", name="late", expires_at=utc_now())


def test_second_revocation_is_invalid_state_and_unknown_key_not_found(runtime):
    issued = runtime.engine.keys.issue(role="support", name="desk")
    runtime.engine.keys.revoke(issued.principal.key_id, actor="test")
    with pytest.raises(InvalidState):
        runtime.engine.keys.revoke(issued.principal.key_id, actor="test")
    with pytest.raises(NotFound):
        runtime.engine.keys.revoke("0123456789ab", actor="test")


def test_merchant_key_redeems_only_as_its_merchant(runtime):
    key = runtime.engine.keys.issue(role="merchant", name="shop", merchant_id="m-7")
    principal = runtime.engine.keys.authenticate(key.secret)
    assert principal.merchant_id == "m-7"
    principal.check_redeems_as("m-7")
    with pytest.raises(Forbidden):
        principal.check_redeems_as("m-8")


def test_merchant_key_without_merchant_id_is_bound_to_its_name(runtime):
    key = runtime.engine.keys.issue(role="merchant", name="corner-shop")
    assert runtime.engine.keys.authenticate(key.secret).merchant_id == "corner-shop"


@pytest.mark.parametrize("role, binding", [("app", {"merchant_id": "m"}),
                                           ("merchant", {"tenant": "t:x"}),
                                           ("support", {"tenant": "-t"})])
def test_a_wrong_binding_is_refused(runtime, role, binding):
    with pytest.raises(ValidationFailed):
        runtime.engine.keys.issue(role=role, name="x", **binding)


@pytest.mark.parametrize("role", ["admin", "app", "merchant", "support", "finance"])
def test_a_key_of_any_role_belongs_to_a_tenant(runtime, role):
    key = runtime.engine.keys.issue(role=role, name="x", tenant="acme")
    assert runtime.engine.keys.authenticate(key.secret).tenant == "acme"


def test_listing_pages_through_every_key_in_issue_order(runtime):
    ids = [runtime.engine.keys.issue(role="app", name=f"k{i}").principal.key_id
           for i in range(3)]
    first, more = runtime.engine.keys.listing(0, 2)
    rest, end = runtime.engine.keys.listing(more, 2)
    assert [k.key_id for k in first + rest] == ids and end is None


def test_key_issued_before_bindings_still_decodes_and_works(runtime):
    """An ApiKey.Created stored in the first shape (no merchant_id, tenant, expires_at,
    class_version) decodes; the merchant key is bound to its name."""
    vault, store = runtime.engine.vault, runtime.store
    key_id, secret = "00aa11bb22cc", "old-secret"
    state = {"timestamp": {"_type_": "datetime", "_data_": utc_now().isoformat()},
             "originator_topic": "quanyi:api_key", "key_id": key_id, "name": "old-shop",
             "role": "merchant", "secret_hash": vault.hash_api_secret(secret),
             "actor": "cli"}
    store.recorder.insert_events([StoredEvent(api_key_id(key_id), 1, "quanyi:api_key.issued",
                                              orjson.dumps(state))])
    principal = runtime.engine.keys.authenticate(f"qy_{key_id}_{secret}")
    assert principal is not None and principal.merchant_id == "old-shop"
    assert principal.tenant is None
    listed = [k.view() for k in runtime.engine.keys.listing(0, 10)[0]]
    assert listed[0]["key_id"] == key_id and listed[0]["expires_at"] is None
