"""Tenants: which merchant's shop a thing belongs to, and who may see it.

Quanyi serves one platform (every key without a tenant) or many merchants' shops on one
engine. What a tenant-bound key makes belongs to its tenant; the platform's things have no
tenant (None), and so does everything stored before tenants were walls.

A tenant's natural keys carry it: its SKU ``VIP`` is stored as ``acme:VIP`` (its *stock
key*), so products, their codes, batches, stock and purchase quotas of two tenants never
share a row, and two tenants may both sell a ``VIP``. A SKU holds no ``:``, so a stock key
can never be a platform SKU, and the tenant of any stored SKU is the part before its last
``:``. An order belongs to its owner's tenant (``tenant:<name>``).

A tenant-bound key sees only its tenant's things; anything else is answered exactly as an
unknown id is (``not_visible`` raises the same NotFound a missing thing raises).
"""

from __future__ import annotations

import re

from engine.kernel.errors import NotFound, ValidationFailed

SEPARATOR = ":"
# a tenant's name becomes part of natural keys and of ledger account names
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_tenant(name: str) -> str:
    """A tenant's name: 1-64 letters, digits, '.', '_' or '-', from a letter or digit."""
    if not isinstance(name, str) or not NAME.match(name):
        raise ValidationFailed("tenant must be 1-64 letters, digits, '.', '_' or '-', "
                               "starting with a letter or digit")
    return name


def stock_key(tenant: str | None, sku: str) -> str:
    """The key a tenant's SKU is stored under (the SKU itself on the platform)."""
    return sku if tenant is None else f"{tenant}{SEPARATOR}{sku}"


def tenant_of(key: str) -> str | None:
    """The tenant a stored SKU (or other natural key) belongs to; None: the platform's."""
    tenant, separator, _ = key.rpartition(SEPARATOR)
    return tenant if separator else None


def shown(key: str) -> str:
    """A stored SKU as its tenant named it."""
    return key.rpartition(SEPARATOR)[2]


def owner_tenant(owner: str | None) -> str | None:
    """The tenant of an owner (``tenant:<name>``, or ``key:<id>`` of a platform key)."""
    if owner and owner.startswith("tenant:"):
        return owner.removeprefix("tenant:")
    return None


def visible(viewer: str | None, tenant: str | None) -> bool:
    """Whether a key of tenant ``viewer`` (None: the platform's) may see a thing of
    ``tenant``: the platform sees every tenant, a tenant only its own."""
    return viewer is None or viewer == tenant


def check_visible(viewer: str | None, tenant: str | None, unknown: str) -> None:
    """Refuse a thing of another tenant exactly as an unknown one (``unknown`` is the
    message a missing thing gets)."""
    if not visible(viewer, tenant):
        raise NotFound(unknown)
