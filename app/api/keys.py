"""Customers' API keys: made, rotated and revoked on the storefront's `/api` page (or by
`pasok apikey create`), and looked up for every `/api/v2` call.

A key works only on its own tenant's host: the lookup is by digest *and* tenant, in that
tenant's scope. Keys are stored hashed (see app.api.models) and shown once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update

from app.accounts.models import CUSTOMER, User
from app.api.models import MAX_LABEL, PREFIX_LENGTH, ApiKey
from app.audit.services import record_audit
from app.errors import NotFound, PasokError, ValidationError
from app.extensions import db
from app.types import utcnow

MAX_KEYS_PER_CUSTOMER = 5
TOKEN_BYTES = 20  # 160 random bits, written as 40 hex digits
MAX_TOKEN = 128  # anything longer is no key of ours, and is not worth hashing
# `last_used_at` is written at most this often per key, not on every call.
TOUCH_EVERY = timedelta(seconds=60)


class KeyLimitReached(PasokError):
    def __init__(self):
        super().__init__(
            _l("You can have at most %(n)s API keys; revoke one first.", n=MAX_KEYS_PER_CUSTOMER)
        )


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    token: str  # the key itself: shown once, never stored


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def customer_keys(tenant_id: int, customer_id: int) -> list[ApiKey]:
    """The customer's working keys, oldest first."""
    return list(
        db.session.scalars(
            select(ApiKey)
            .where(
                ApiKey.tenant_id == tenant_id,
                ApiKey.customer_id == customer_id,
                ApiKey.revoked_at.is_(None),
            )
            .order_by(ApiKey.id)
        )
    )


def create_key(tenant_id: int, customer_id: int, label: str, *, actor: User | str) -> NewKey:
    """A new key for the customer; `KeyLimitReached` past `MAX_KEYS_PER_CUSTOMER`."""
    customer = _customer(tenant_id, customer_id)
    label = _label(label)
    if len(customer_keys(tenant_id, customer.id)) >= MAX_KEYS_PER_CUSTOMER:
        raise KeyLimitReached()
    return _new_key(tenant_id, customer, label, actor)


def rotate_key(tenant_id: int, customer_id: int, key_id: int, *, actor: User | str) -> NewKey:
    """Revoke the key and make a new one with its label, in one transaction."""
    key = _own_key(tenant_id, customer_id, key_id)
    key.revoked_at = utcnow()
    fresh = _new_key(tenant_id, _customer(tenant_id, customer_id), key.label, actor)
    record_audit(
        "apikey.rotate",
        actor=actor,
        tenant_id=tenant_id,
        target=f"user:{customer_id}",
        details={"key": key.id, "prefix": key.prefix, "new_key": fresh.key.id},
    )
    return fresh


def revoke_key(tenant_id: int, customer_id: int, key_id: int, *, actor: User | str) -> ApiKey:
    key = _own_key(tenant_id, customer_id, key_id)
    key.revoked_at = utcnow()
    db.session.flush()
    record_audit(
        "apikey.revoke",
        actor=actor,
        tenant_id=tenant_id,
        target=f"user:{customer_id}",
        details={"key": key.id, "prefix": key.prefix},
    )
    return key


def authenticate(tenant_id: int, token: str | None) -> tuple[ApiKey, User] | None:
    """The working key `token` of this tenant and its customer, or None. A key of another
    tenant, a revoked key, or a disabled customer's key is no key here."""
    if not token or len(token) > MAX_TOKEN:
        return None
    try:
        digest = digest_of(token)
    except UnicodeEncodeError:
        return None
    row = db.session.execute(
        select(ApiKey, User)
        .join(User, User.id == ApiKey.customer_id)
        .where(
            ApiKey.digest == digest,
            ApiKey.tenant_id == tenant_id,
            ApiKey.revoked_at.is_(None),
            User.tenant_id == tenant_id,
            User.kind == CUSTOMER,
            User.is_enabled.is_(True),
        )
    ).first()
    if row is None:
        return None
    key, customer = row
    return key, customer


def touch(key: ApiKey) -> None:
    """Note that the key was used (in the caller's transaction), at most once a minute."""
    now = utcnow()
    if key.last_used_at is not None and now - key.last_used_at < TOUCH_EVERY:
        return
    db.session.execute(
        update(ApiKey)
        .where(ApiKey.id == key.id, ApiKey.tenant_id == key.tenant_id)
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )


def _new_key(tenant_id: int, customer: User, label: str, actor: User | str) -> NewKey:
    token = secrets.token_hex(TOKEN_BYTES)
    key = ApiKey(
        tenant_id=tenant_id,
        customer_id=customer.id,
        label=label,
        prefix=token[:PREFIX_LENGTH],
        digest=digest_of(token),
    )
    db.session.add(key)
    db.session.flush()
    record_audit(
        "apikey.create",
        actor=actor,
        tenant_id=tenant_id,
        target=f"user:{customer.id}",
        details={"key": key.id, "prefix": key.prefix, "label": label},
    )
    return NewKey(key, token)


def _own_key(tenant_id: int, customer_id: int, key_id: int) -> ApiKey:
    key = db.session.scalar(
        select(ApiKey).where(
            ApiKey.id == key_id,
            ApiKey.tenant_id == tenant_id,
            ApiKey.customer_id == customer_id,
            ApiKey.revoked_at.is_(None),
        )
    )
    if key is None:
        raise NotFound(_l("No such API key"))
    return key


def _customer(tenant_id: int, customer_id: int) -> User:
    customer = db.session.get(User, customer_id)
    if customer is None or customer.tenant_id != tenant_id or customer.kind != CUSTOMER:
        raise NotFound(_l("No such customer"))
    return customer


def _label(label: str | None) -> str:
    label = (label or "").strip()
    if len(label) > MAX_LABEL:
        raise ValidationError(_l("The label is at most %(n)s characters.", n=MAX_LABEL), "label")
    if any(ord(c) < 32 for c in label):
        raise ValidationError(_l("The label must be plain text."), "label")
    return label
