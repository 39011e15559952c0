"""Deterministic aggregate ids: uuid5 of a natural key, so that a retried command addresses
the same aggregate and the store's unique (id, version) key refuses a second creation."""

from __future__ import annotations

from uuid import UUID, uuid5

NAMESPACE = UUID("5b0c7e9e-8d0c-4f57-9a53-2f7a1c6f0a51")


def product_id(sku: str) -> UUID:
    return uuid5(NAMESPACE, f"product:{sku}")


def code_id(fingerprint: str) -> UUID:
    return uuid5(NAMESPACE, f"code:{fingerprint}")


def batch_id(scope: str, key: str) -> UUID:
    return uuid5(NAMESPACE, f"batch:{scope}:{key}")


def redemption_id(code: UUID, ordinal: int) -> UUID:
    return uuid5(NAMESPACE, f"redemption:{code}:{ordinal}")


def api_key_id(key_id: str) -> UUID:
    return uuid5(NAMESPACE, f"api-key:{key_id}")


def supplier_id(supplier: str) -> UUID:
    return uuid5(NAMESPACE, f"supplier:{supplier}")


def topup_offers_id(sku: str) -> UUID:
    return uuid5(NAMESPACE, f"topup-offers:{sku}")


def order_id(ref_digest: str) -> UUID:
    """An order's id from the keyed digest of its owner and external_ref (Vault.order_ref):
    nobody without the secret key can tell an order's id from its external_ref."""
    return uuid5(NAMESPACE, f"order:{ref_digest}")


def legacy_order_id(actor: str, external_ref: str) -> UUID:
    """How order ids were derived before they were keyed; kept to find those orders."""
    return uuid5(NAMESPACE, f"order:{actor}:{external_ref}")


def payment_id(payment_ref: str) -> UUID:
    return uuid5(NAMESPACE, f"payment:{payment_ref}")


def quota_id(buyer_id: str, sku: str) -> UUID:
    return uuid5(NAMESPACE, f"quota:{buyer_id}:{sku}")


def distributor_id(distributor: str) -> UUID:
    return uuid5(NAMESPACE, f"distributor:{distributor}")


def receipt_id(scope: str, key_digest: str) -> UUID:
    """A command's receipt from its caller's scope and the keyed digest of its
    Idempotency-Key (the key itself is never stored)."""
    return uuid5(NAMESPACE, f"receipt:{scope}:{key_digest}")
