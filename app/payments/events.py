"""Webhook deliveries, stored once per receiver: the row is written in the transaction that
applies the event, so a replay (or a concurrent duplicate, which waits on the unique index
until the first commits) finds it and changes nothing, and an event whose processing failed
leaves no row and is applied when the gateway delivers it again."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db
from app.payments.models import GatewayEvent, owner_key


def _insert():
    dialect = db.session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(GatewayEvent)


def record_event(receiver: int | None, gateway: str, event_id: str, kind: str) -> int | None:
    """The new event's id, or None when this receiver has stored it already."""
    statement = (
        _insert()
        .values(
            tenant_id=receiver,
            receiver=owner_key(receiver),
            gateway=gateway,
            event_id=event_id[:200],
            kind=kind[:80],
        )
        .on_conflict_do_nothing(index_elements=["receiver", "gateway", "event_id"])
        .returning(GatewayEvent.id)
    )
    return db.session.execute(statement).scalar()


def note_outcome(event_row_id: int, outcome: str, topup_id: int | None) -> None:
    db.session.execute(
        update(GatewayEvent)
        .where(GatewayEvent.id == event_row_id)
        .values(outcome=outcome[:200], topup_id=topup_id)
        .execution_options(across_tenants=True)
    )
