"""GET /v1/audit/orders|codes/{id}/bundle on both stores, checked offline: a real bundle
verifies through the module, the CLI and the two files alone; every way of tampering with
one is refused with its reason; no secret travels; unknown ids answer 404; roles."""

from __future__ import annotations

import base64
import copy
import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from api.cli import app as cli
from api.schemas import BundleOut
from engine.kernel.code_strings import mask
from replay import merkle
from replay.bundle_check import Refused, check_bundle
from tests.e2e.conftest import import_codes

ROOT = Path(__file__).resolve().parents[2]
CHAIN = (("d-root", None), ("d-shop", "d-root"))
CODES = ["BUNDLE-A-7781", "BUNDLE-B-4402"]


def _trusted(runtime) -> bytes:
    return runtime.audit.public_key


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def refunded_order(client, keys) -> dict:
    """An order of two codes through a distributor, paid, one code refunded; the order."""
    for distributor_id, parent_id in CHAIN:
        answer = client.post("/v1/distributors", headers=keys["app"], json={
            "distributor_id": distributor_id, "name": distributor_id, "parent_id": parent_id})
        assert answer.status_code == 201, answer.text
    sku = f"BND-{uuid.uuid4().hex[:8]}"
    assert client.post("/v1/products", headers=keys["app"], json={
        "sku": sku, "name": "Video VIP", "delivery": "card", "price": 1990,
        "commission_rates_bp": [500, 200]}).status_code == 201
    import_codes(client, keys, sku, CODES)
    placed = client.post("/v1/orders", headers=keys["app"], json={
        "buyer_id": "b-1", "items": [{"sku": sku, "quantity": 2}],
        "distributor_id": "d-shop"}).json()
    paid = client.post(f"/v1/orders/{placed['order_id']}/payments", headers=keys["app"], json={
        "payment_ref": f"wx-{uuid.uuid4().hex[:8]}", "amount": placed["amount"],
        "provider": "wechat"})
    assert paid.status_code == 200, paid.text
    first = paid.json()["codes"][0]["code_id"]
    refunded = client.post(f"/v1/orders/{placed['order_id']}/refunds", headers=keys["app"],
                           json={"reason": "buyer asked", "code_ids": [first]})
    assert refunded.status_code == 201, refunded.text
    return client.get(f"/v1/orders/{placed['order_id']}", headers=keys["support"]).json()


def order_bundle(client, keys, order: dict, role: str = "finance") -> dict:
    answer = client.get(f"/v1/audit/orders/{order['order_id']}/bundle", headers=keys[role])
    assert answer.status_code == 200, answer.text
    return answer.json()


def redeemed_code(client, keys, order: dict) -> str:
    """The order's code still held, redeemed by the merchant: its id."""
    held = order["codes"][0]["code_id"]
    code = next(c for c in CODES if client.post("/v1/codes/lookup", headers=keys["support"],
                                                json={"code": c}).json()["code_id"] == held)
    assert client.post("/v1/redemptions", headers=keys["merchant"], json={
        "code": code, "merchant_id": "m-1"}).status_code == 201
    return held


# -- real bundles verify --------------------------------------------------------------------

def test_order_bundle_verifies_offline(client, keys, runtime, tmp_path):
    order = refunded_order(client, keys)
    bundle = order_bundle(client, keys, order)
    BundleOut.model_validate(bundle)  # the answer is the documented schema
    verified = check_bundle(bundle, _trusted(runtime))
    assert verified.kind == "order" and verified.subject == order["order_id"]
    kinds = {e["topic"].split(".")[0] for e in bundle["events"]}
    assert kinds == {"quanyi:order", "quanyi:payment", "quanyi:ledger"}
    assert len(bundle["streams"]) == 4  # order, payment, sale, refund
    assert bundle["claims"]["order"]["status"] == "partially_refunded"
    assert any("partially_refunded" in line for line in verified.lines)
    commission = [p for p in bundle["claims"]["postings"]
                  if p["account_id"].startswith("liabilities:distributors:")]
    assert {p["account_id"] for p in commission} == {"liabilities:distributors:d-shop",
                                                     "liabilities:distributors:d-root"}


def test_order_bundle_verifies_with_the_cli(client, keys, runtime, tmp_path):
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(order_bundle(client, keys, refunded_order(client, keys))))
    result = CliRunner().invoke(cli, ["audit", "verify-bundle", str(path), "--public-key",
                                      _b64(_trusted(runtime))])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("verified: the order bundle")


def test_the_two_files_alone_verify_a_bundle(client, keys, runtime, tmp_path):
    """A third party with bundle_check.py and merkle.py, outside the repository."""
    for name in ("bundle_check.py", "merkle.py"):
        shutil.copy(ROOT / "replay" / name, tmp_path / name)
    (tmp_path / "b.json").write_text(json.dumps(order_bundle(client, keys,
                                                             refunded_order(client, keys))))
    done = subprocess.run([sys.executable, "-I", "bundle_check.py", "b.json", "--public-key",
                           _b64(_trusted(runtime))], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "authentic:" in done.stdout and "postings:" in done.stdout


def test_code_bundle_verifies_offline(client, keys, runtime, tmp_path):
    code_id = redeemed_code(client, keys, refunded_order(client, keys))
    answer = client.get(f"/v1/audit/codes/{code_id}/bundle", headers=keys["support"])
    assert answer.status_code == 200, answer.text
    bundle = answer.json()
    verified = check_bundle(bundle, _trusted(runtime))
    assert verified.kind == "code" and "redeemed by m-1" in verified.lines[2]
    assert {e["topic"] for e in bundle["events"]} >= {"quanyi:code.redeemed",
                                                      "quanyi:ledger.posted"}
    assert {p["code_id"] for p in bundle["claims"]["postings"]} == {code_id}
    path = tmp_path / "code.json"
    path.write_text(answer.text)
    result = CliRunner().invoke(cli, ["audit", "verify-bundle", str(path), "--public-key",
                                      _b64(_trusted(runtime))])
    assert result.exit_code == 0, result.output


def test_a_refunded_code_bundle_shows_it_back_on_sale(client, keys, runtime):
    order = refunded_order(client, keys)
    code_id = order["released"][0]["code_id"]
    bundle = client.get(f"/v1/audit/codes/{code_id}/bundle", headers=keys["support"]).json()
    verified = check_bundle(bundle, _trusted(runtime))
    assert "is available" in verified.lines[2]
    kinds = {base64.b64decode(e["state"]).decode().split('"kind":"')[1].split('"')[0]
             for e in bundle["events"] if e["topic"] == "quanyi:ledger.posted"}
    assert kinds == {"sale", "refund"}  # its cost posted, then reversed


def test_no_code_or_pin_in_clear_in_a_bundle(client, keys):
    order = refunded_order(client, keys)
    bundles = [order_bundle(client, keys, order)]
    for code in order["codes"] + order["released"]:
        bundles.append(client.get(f"/v1/audit/codes/{code['code_id']}/bundle",
                                  headers=keys["support"]).json())
    for bundle in bundles:
        text = json.dumps(bundle) + "".join(
            base64.b64decode(e["state"]).decode() for e in bundle["events"])
        for code in CODES:
            assert code not in text and f"PIN{code}" not in text
            assert mask(code) not in text  # not even masked


# -- tampering is refused -------------------------------------------------------------------

def _events_of(bundle: dict, prefix: str) -> list[dict]:
    return [e for e in bundle["events"] if e["topic"].startswith(prefix)]


def _edit_event_bytes(bundle: dict) -> None:
    paid = next(e for e in bundle["events"] if e["topic"] == "quanyi:order.paid")
    state = json.loads(base64.b64decode(paid["state"]))
    state["amount"] += 1
    paid["state"] = _b64(json.dumps(state).encode())


def _drop(version_of: str):
    def drop(bundle: dict) -> None:
        order = _events_of(bundle, "quanyi:order.")
        gone = order[1] if version_of == "middle" else order[-1]
        bundle["events"].remove(gone)
    return drop


def _resign(edit):
    """The head edited by ``edit`` and signed again, with a key not the operator's."""
    def forge(bundle: dict) -> None:
        head = bundle["head"]
        edit(head)
        other = Ed25519PrivateKey.generate()
        message = merkle.head_message(head["tree_size"], bytes.fromhex(head["root_hash"]),
                                      head["signed_at"])
        head["signature"] = _b64(other.sign(message))
        bundle["public_key"] = _b64(other.public_key().public_bytes_raw())
    return forge


def _edit_head(field: str):
    def edit(bundle: dict) -> None:
        head = bundle["head"]
        if field == "tree_size":
            head["tree_size"] += 1
        else:
            head["root_hash"] = "00" * 32
    return edit


def _swap_proofs(bundle: dict) -> None:
    first, second = bundle["events"][0], bundle["events"][-1]
    first["proof"], second["proof"] = second["proof"], first["proof"]


def _claim(field: str, value):
    def edit(bundle: dict) -> None:
        bundle["claims"]["order"][field] = value
    return edit


def _claim_posting(bundle: dict) -> None:
    bundle["claims"]["postings"][0]["amount"] += 100


TAMPERING = {
    "edited event bytes": (_edit_event_bytes, "authentic", "is not in the signed log"),
    "dropped middle event": (_drop("middle"), "complete", "missing 2"),
    "dropped last event": (_drop("last"), "complete", "the bundle holds versions"),
    "head re-signed by another key": (_resign(lambda head: None), "authentic",
                                      "another audit key"),
    "forged head with edited root": (_resign(lambda head: head.update(root_hash="11" * 32)),
                                     "authentic", "another audit key"),
    "edited tree size": (_edit_head("tree_size"), "authentic", "signature does not verify"),
    "edited root": (_edit_head("root_hash"), "authentic", "signature does not verify"),
    "swapped proofs": (_swap_proofs, "authentic", "is not in the signed log"),
    "edited claimed status": (_claim("status", "delivered"), "state", "status"),
    "edited claimed amount": (_claim("amount", 1990), "state", "amount"),
    "edited claimed posting": (_claim_posting, "postings", "].amount"),
}


@pytest.mark.parametrize("way", TAMPERING)
def test_tampered_bundle_is_refused(way, client, keys, runtime):
    tamper, check, reason = TAMPERING[way]
    bundle = order_bundle(client, keys, refunded_order(client, keys))
    check_bundle(copy.deepcopy(bundle), _trusted(runtime))  # untouched, it verifies
    tamper(bundle)
    with pytest.raises(Refused) as refused:
        check_bundle(bundle, _trusted(runtime))
    assert refused.value.check == check and reason in refused.value.reason, refused.value


def test_cli_refuses_a_tampered_bundle_with_exit_1(client, keys, runtime, tmp_path):
    bundle = order_bundle(client, keys, refunded_order(client, keys))
    _swap_proofs(bundle)
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    result = CliRunner().invoke(cli, ["audit", "verify-bundle", str(path), "--public-key",
                                      _b64(_trusted(runtime))])
    assert result.exit_code == 1
    assert result.output.startswith("refused: authentic:")


def test_cli_refuses_a_file_that_is_no_bundle(tmp_path):
    path = tmp_path / "bundle.json"
    path.write_text("{\"format\": \"something else\"}")
    result = CliRunner().invoke(cli, ["audit", "verify-bundle", str(path)])
    assert result.exit_code == 1 and "not a quanyi-dispute-bundle/1" in result.output


# -- who may ask, and for what --------------------------------------------------------------

@pytest.mark.parametrize("what", ["orders", "codes"])
def test_unknown_id_answers_404(what, client, keys):
    answer = client.get(f"/v1/audit/{what}/{uuid.uuid4()}/bundle", headers=keys["support"])
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_only_support_and_finance_get_bundles(client, keys):
    order = refunded_order(client, keys)
    code_id = order["codes"][0]["code_id"]
    for path in (f"/v1/audit/orders/{order['order_id']}/bundle",
                 f"/v1/audit/codes/{code_id}/bundle"):
        for role in ("support", "finance", "admin"):
            assert client.get(path, headers=keys[role]).status_code == 200
        for role in ("app", "merchant"):
            assert client.get(path, headers=keys[role]).status_code == 403, role
        assert client.get(path).status_code == 401


@pytest.mark.parametrize("edit", [
    lambda b: b.update(events="not a list"),
    lambda b: b["claims"].update(order={"codes": ["not an object"]}),
    lambda b: b["head"].update(tree_size="many"),
    lambda b: b["streams"].append({"originator_id": "not a uuid", "versions": 1}),
])
def test_a_malformed_bundle_is_refused_never_a_crash(edit, client, keys, runtime):
    bundle = order_bundle(client, keys, refunded_order(client, keys))
    edit(bundle)
    with pytest.raises(Refused) as refused:
        check_bundle(bundle, _trusted(runtime))
    assert refused.value.check in ("format", "state")


def test_a_payment_refunded_on_arrival_verifies(client, keys, runtime, product):
    """Cancelled, its code sold to another, then paid: the payment kept and paid back."""
    import_codes(client, keys, product, ["BUNDLE-LATE-1"])
    first = client.post("/v1/orders", headers=keys["app"], json={
        "buyer_id": "b-1", "items": [{"sku": product, "quantity": 1}]}).json()
    assert client.post(f"/v1/orders/{first['order_id']}/cancel",
                       headers=keys["app"]).status_code == 200
    assert client.post("/v1/orders", headers=keys["app"], json={
        "buyer_id": "b-2", "items": [{"sku": product, "quantity": 1}]}).status_code == 201
    paid = client.post(f"/v1/orders/{first['order_id']}/payments", headers=keys["app"],
                       json={"payment_ref": "wx-late-1", "amount": first["amount"],
                             "provider": "wechat"})
    assert paid.status_code == 200 and paid.json()["status"] == "refunded", paid.text
    verified = check_bundle(order_bundle(client, keys, first), _trusted(runtime))
    assert "paid 1990, refunded 1990" in verified.lines[2]
    assert "assets:clearing:wechat 0 CNY" in verified.lines[3]
