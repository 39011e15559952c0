"""A command's receipt commits exactly when its events do, with real concurrent writers:
the writer groups their saves into one append, and a group with a clash falls back to one
append per command; either way each command's events and its receipt are stored together or
not at all. A command that saves twice extends its receipt."""

from __future__ import annotations

import threading
import uuid

from engine.eventstore.receipts import Command, find_receipt, under_key
from engine.kernel.errors import AlreadyExists
from engine.kernel.ids import receipt_id
from tests.integration.helpers import codes_for, define_product, import_codes, new_sku

WRITERS = 24
RIVALS = 6  # writers that all define one and the same SKU: one of them wins


def _define_under_key(rt, sku: str, command: Command, outcomes: dict, start) -> None:
    start.wait()
    with under_key(command):
        try:
            define_product(rt, sku)
            outcomes[command.receipt_id] = sku
        except AlreadyExists:
            outcomes[command.receipt_id] = None


def test_concurrent_commands_each_commit_their_receipt_with_their_events_or_neither(runtime):
    contested = new_sku()
    skus = [new_sku() for _ in range(WRITERS - RIVALS)] + [contested] * RIVALS
    commands = [Command(receipt_id("key-test", uuid.uuid4().hex), f"digest-{n}")
                for n in range(WRITERS)]
    outcomes: dict = {}
    start = threading.Barrier(WRITERS)
    threads = [threading.Thread(target=_define_under_key,
                                args=(runtime, sku, command, outcomes, start))
               for sku, command in zip(skus, commands)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    defined = {rid: sku for rid, sku in outcomes.items() if sku is not None}
    assert len(outcomes) == WRITERS and len(defined) == WRITERS - RIVALS + 1
    for command in commands:
        receipt = find_receipt(runtime.store, command.receipt_id)
        if command.receipt_id not in defined:
            assert receipt is None  # refused: nothing of it, its receipt neither, stored
            continue
        product = runtime.engine.catalog.get(defined[command.receipt_id])
        assert receipt.request_digest == command.request_digest
        assert receipt.ids_of("product") == [product.id]


def test_a_command_that_saves_twice_extends_its_receipt(runtime):
    sku = define_product(runtime)
    command = Command(receipt_id("key-test", uuid.uuid4().hex), "digest")
    with under_key(command):
        import_codes(runtime, sku, codes_for(2))  # the batch, its codes, the batch closed
    receipt = find_receipt(runtime.store, command.receipt_id)
    assert receipt is not None and receipt.version >= 2
    assert len(receipt.ids_of("batch")) == 1 and len(receipt.ids_of("code")) == 2
