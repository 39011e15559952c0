"""The http-json adapter against the supplier simulator, over real HTTP on 127.0.0.1: every
failure mode becomes the outcome docs/suppliers.md promises, and the simulator's own books
show that no reference is ever credited twice. Nothing here touches a store."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.kernel.errors import CallbackRejected, SignatureInvalid
from engine.kernel.money import Money
from engine.topups.supplier_port import (
    Outcome,
    SupplierLink,
    SupplierTimeouts,
    TopupRequest,
)
from supplier_adapters.http_json import HttpJsonAdapter, signature
from supplier_sim import SimAdmin, SimConfig, SimServer

API_KEY = "sk-test-" + uuid.uuid4().hex
CALLBACK_SECRET = "cb-test-" + uuid.uuid4().hex
CLIENT_TIMEOUT = 0.5
HANG = 4.0  # the simulator holds a timed-out answer back this long: far past the client


@dataclass
class Received:
    """Callbacks our side received, as (headers, body), in arrival order."""

    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answer: int = 204
    url: str = ""

    def wait_for(self, count: int, reference: str, timeout: float = 10.0
                 ) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mine = [c for c in self.calls if reference.encode() in c[1]]
            if len(mine) >= count:
                return mine
            time.sleep(0.02)
        raise AssertionError(f"{count} callbacks for {reference} did not come: {self.calls}")


@pytest.fixture(scope="module")
def received() -> Iterator[Received]:
    """A callback receiver standing in for our endpoint (its own server on 127.0.0.1)."""
    got = Received()

    async def callback(request: Request) -> Response:
        got.calls.append((dict(request.headers), await request.body()))
        return Response(status_code=got.answer)

    app = Starlette(routes=[Route("/callbacks", callback, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    got.url = f"http://127.0.0.1:{port}/callbacks"
    yield got
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def sim(received: Received) -> Iterator[SimServer]:
    config = SimConfig(api_key=API_KEY, callback_secret=CALLBACK_SECRET,
                       callback_url=received.url, hang_seconds=HANG, callback_delay_ms=100)
    with SimServer(config) as server:
        yield server


@pytest.fixture
def admin(sim: SimServer) -> Iterator[SimAdmin]:
    control = sim.admin()
    control.configure(duplicate_callbacks=0, out_of_order=False, behaviours={},
                      callback_always=False, timeout_credits=True)
    yield control
    control.close()


@pytest.fixture
def adapter(sim: SimServer) -> Iterator[HttpJsonAdapter]:
    link = SupplierLink("sup-sim", sim.url, {"api_key": API_KEY,
                                             "callback_secret": CALLBACK_SECRET},
                        SupplierTimeouts(connect_seconds=1.0, read_seconds=CLIENT_TIMEOUT),
                        allow_private_addresses=True)  # the simulator's 127.0.0.1
    built = HttpJsonAdapter(link)
    yield built
    built.close()


def request_for(account: str, amount: int = 5000) -> TopupRequest:
    return TopupRequest(reference=f"att-{uuid.uuid4().hex[:16]}", supplier_sku="CM-50",
                        recharge_account=account, amount=Money(amount, "CNY"))


def account(admin: SimAdmin, behaviour: str | None = None) -> str:
    """A fresh recharge account, which the simulator treats as told."""
    name = f"1390{uuid.uuid4().int % 10**7:07d}"
    if behaviour is not None:
        current = admin.configure()["behaviours"]
        admin.configure(behaviours={**current, name: behaviour})
    return name


def test_success_credits_the_account(adapter, admin):
    request = request_for(account(admin, "succeed"))
    report = adapter.place(request)
    assert report.outcome is Outcome.SUCCEEDED and report.supplier_txn_id
    assert admin.credits(request.recharge_account) == 1


def test_definite_refusal_is_failed_and_credits_nothing(adapter, admin):
    request = request_for(account(admin, "fail"))
    report = adapter.place(request)
    assert report.outcome is Outcome.FAILED
    assert "declined" in (report.detail or "")
    assert admin.credits(request.recharge_account) == 0


def test_5xx_is_unknown_and_a_query_then_closes_the_reference(adapter, admin):
    request = request_for(account(admin, "error"))
    assert adapter.place(request).outcome is Outcome.UNKNOWN
    assert adapter.query(request.reference).outcome is Outcome.FAILED  # never taken
    admin.configure(behaviours={})
    again = adapter.place(request)  # arriving late, after the query: refused, not credited
    assert again.outcome is Outcome.FAILED
    assert admin.credits(request.recharge_account) == 0


def test_timeout_is_unknown_and_returns_when_the_client_stops_waiting(adapter, admin):
    request = request_for(account(admin, "timeout"))
    started = time.monotonic()
    report = adapter.place(request)
    assert report.outcome is Outcome.UNKNOWN and "timeout" in (report.detail or "")
    assert time.monotonic() - started < HANG - 1


def test_query_after_a_timeout_reveals_the_success(adapter, admin):
    request = request_for(account(admin, "timeout"))
    assert adapter.place(request).outcome is Outcome.UNKNOWN
    report = adapter.query(request.reference)
    assert report.outcome is Outcome.SUCCEEDED and report.supplier_txn_id
    assert admin.credits(request.recharge_account) == 1


def test_query_after_a_lost_request_reveals_it_was_never_taken(adapter, admin):
    admin.configure(timeout_credits=False)
    request = request_for(account(admin, "timeout"))
    assert adapter.place(request).outcome is Outcome.UNKNOWN
    assert adapter.query(request.reference).outcome is Outcome.FAILED
    assert admin.credits(request.recharge_account) == 0


def test_connection_refused_is_unknown():
    link = SupplierLink("down", "http://127.0.0.1:9", {"api_key": "k", "callback_secret": "s"},
                        SupplierTimeouts(connect_seconds=1.0, read_seconds=1.0),
                        allow_private_addresses=True)
    down = HttpJsonAdapter(link)
    try:
        assert down.place(request_for("13900000000")).outcome is Outcome.UNKNOWN
        assert down.query("att-1").outcome is Outcome.UNKNOWN
    finally:
        down.close()


def test_a_request_the_supplier_refuses_to_read_is_failed(sim, admin):
    link = SupplierLink("sup-sim", sim.url, {"api_key": "not-the-key", "callback_secret": "s"},
                        SupplierTimeouts(1.0, CLIENT_TIMEOUT), allow_private_addresses=True)
    wrong = HttpJsonAdapter(link)
    try:
        request = request_for(account(admin, "succeed"))
        report = wrong.place(request)
        assert report.outcome is Outcome.FAILED and "401" in (report.detail or "")
        assert admin.credits(request.recharge_account) == 0
    finally:
        wrong.close()


def test_a_supplier_on_a_private_address_is_sent_nothing_where_that_is_not_allowed(sim,
                                                                                 admin):
    link = SupplierLink("sup-sim", sim.url, {"api_key": API_KEY,
                                             "callback_secret": CALLBACK_SECRET},
                        SupplierTimeouts(1.0, CLIENT_TIMEOUT))  # private addresses refused
    guarded = HttpJsonAdapter(link)
    try:
        request = request_for(account(admin, "succeed"))
        placed = guarded.place(request)
        assert placed.outcome is Outcome.UNKNOWN  # nothing sent, yet no failover on it
        assert "not sent" in (placed.detail or "") and "127.0.0.1" in placed.detail
        assert guarded.query(request.reference).outcome is Outcome.UNKNOWN
        assert admin.credits(request.recharge_account) == 0  # the key never left
    finally:
        guarded.close()


def test_a_reference_placed_with_other_details_is_unknown(adapter, admin):
    request = request_for(account(admin, "succeed"))
    adapter.place(request)
    other = TopupRequest(request.reference, request.supplier_sku, request.recharge_account,
                         Money(9900, "CNY"))
    assert adapter.place(other).outcome is Outcome.UNKNOWN
    assert admin.credits(request.recharge_account) == 1


def test_same_reference_placed_twice_credits_once(adapter, admin):
    request = request_for(account(admin, "succeed"))
    first, second = adapter.place(request), adapter.place(request)
    assert first == second and first.outcome is Outcome.SUCCEEDED
    assert admin.credits(request.recharge_account) == 1
    assert admin.topup(request.reference)["placed"] == 2


def test_same_reference_placed_at_once_from_many_threads_credits_once(adapter, admin):
    request = request_for(account(admin, "succeed"))
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(adapter.place(request)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {r.outcome for r in reports} == {Outcome.SUCCEEDED}
    assert admin.credits(request.recharge_account) == 1


def test_pending_then_a_signed_callback_with_the_outcome(adapter, admin, received):
    request = request_for(account(admin, "pending"))
    assert adapter.place(request).outcome is Outcome.PENDING
    assert admin.credits(request.recharge_account) == 0
    [(headers, body)] = received.wait_for(1, request.reference)
    report = adapter.read_callback(headers, body)
    assert (report.reference, report.outcome) == (request.reference, Outcome.SUCCEEDED)
    assert adapter.query(request.reference).outcome is Outcome.SUCCEEDED
    assert admin.credits(request.recharge_account) == 1


def test_pending_then_a_callback_telling_of_failure(adapter, admin, received):
    request = request_for(account(admin, "pending-fail"))
    assert adapter.place(request).outcome is Outcome.PENDING
    [(headers, body)] = received.wait_for(1, request.reference)
    assert adapter.read_callback(headers, body).outcome is Outcome.FAILED
    assert admin.credits(request.recharge_account) == 0


def test_duplicate_callbacks_all_read_as_the_same_report(adapter, admin, received):
    admin.configure(duplicate_callbacks=2)
    request = request_for(account(admin, "pending"))
    adapter.place(request)
    calls = received.wait_for(3, request.reference)
    reports = {adapter.read_callback(h, b) for h, b in calls}
    assert len(reports) == 1 and reports.pop().outcome is Outcome.SUCCEEDED
    assert admin.credits(request.recharge_account) == 1


def test_out_of_order_callbacks_carry_sequences_that_order_them(adapter, admin, received):
    admin.configure(out_of_order=True)
    request = request_for(account(admin, "pending"))
    adapter.place(request)
    calls = received.wait_for(2, request.reference)
    outcomes = [adapter.read_callback(h, b).outcome for h, b in calls]
    assert outcomes == [Outcome.SUCCEEDED, Outcome.PENDING]  # the stale one came last
    sequences = [sent["sequence"] for sent in admin.callbacks()
                 if sent["reference"] == request.reference]
    assert sequences[0] > sequences[1]


def test_callbacks_are_sent_again_until_answered(adapter, admin, received):
    received.answer = 500
    try:
        request = request_for(account(admin, "pending"))
        adapter.place(request)
        received.wait_for(2, request.reference)
    finally:
        received.answer = 204
    received.wait_for(3, request.reference)
    answered = [s["answered"] for s in admin.callbacks() if s["reference"] == request.reference]
    assert answered[:2] == [500, 500] and answered[-1] == 204


def test_an_outcome_answered_at_once_is_also_called_back_when_asked(adapter, admin, received):
    admin.configure(callback_always=True)
    request = request_for(account(admin, "timeout"))
    assert adapter.place(request).outcome is Outcome.UNKNOWN
    [(headers, body)] = received.wait_for(1, request.reference)
    assert adapter.read_callback(headers, body).outcome is Outcome.SUCCEEDED


def signed(body: bytes, secret: str = CALLBACK_SECRET, at: int | None = None
           ) -> dict[str, str]:
    stamp = str(int(time.time()) if at is None else at)
    return {"Quanyi-Timestamp": stamp, "Quanyi-Signature": signature(secret, stamp, body)}


BODY = b'{"reference":"att-1","status":"succeeded","supplier_txn_id":"T1","sequence":2}'


def test_a_well_signed_callback_is_read(adapter):
    report = adapter.read_callback(signed(BODY), BODY)
    assert (report.reference, report.outcome, report.supplier_txn_id) == (
        "att-1", Outcome.SUCCEEDED, "T1")


@pytest.mark.parametrize("headers", [
    {},
    {"Quanyi-Timestamp": str(int(time.time()))},
    signed(BODY, secret="another-secret"),
    signed(BODY.replace(b"succeeded", b"failed")),  # signed a different body
    signed(BODY, at=int(time.time()) - 3600),  # replayed an hour later
    signed(BODY, at=int(time.time()) + 3600),
    {"Quanyi-Timestamp": "１２３", "Quanyi-Signature": "v1=00"},
], ids=["none", "no-signature", "wrong-secret", "other-body", "stale", "future", "digits"])
def test_a_callback_with_a_bad_or_stale_signature_is_rejected(adapter, headers):
    with pytest.raises(SignatureInvalid):
        adapter.read_callback(headers, BODY)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"reference":"att-1"}',
                                  b'{"reference":"att-1","status":"unknown"}',
                                  b'{"reference":"a b","status":"failed"}'])
def test_a_signed_callback_that_is_no_report_is_rejected(adapter, body):
    with pytest.raises(CallbackRejected) as caught:
        adapter.read_callback(signed(body), body)
    assert not isinstance(caught.value, SignatureInvalid)


def test_the_simulator_decides_alike_for_the_same_seed_and_references():
    def outcomes(seed: int) -> list[str]:
        config = SimConfig(seed=seed, error_rate=0.2, timeout_rate=0.2, failure_rate=0.2,
                           pending_rate=0.2)
        return [config.behaviour(f"ref-{n}", "1390000") for n in range(200)]

    assert outcomes(7) == outcomes(7)
    assert outcomes(7) != outcomes(8)
    assert set(outcomes(7)) == {"error", "timeout", "fail", "pending", "succeed"}
