"""Placing, canceling and resuming orders: the one code path for the storefront, the API and
the workers. The caller commits; every function here runs in the caller's transaction.

Placing an order is all or nothing. Inside one SAVEPOINT it inserts the order row with its
price snapshot and charges both wallets (`app.ledger.charge_order`): if the customer cannot pay,
`InsufficientFunds` propagates and nothing of the order is left (the caller's other work may
still be committed). If the tenant's wholesale wallet is short, the customer is charged anyway
and the order waits `on_hold` until `resume_on_hold_orders`.

Idempotency. The same customer sending the same `ref` (the API's client reference), or posting
the same storefront `form_token`, gets the first order back (`created=False`) and is charged
nothing more. The unique constraints on the order row decide it: the INSERT is
`ON CONFLICT DO NOTHING`, so a concurrent transaction with the same key waits for the first,
then finds its order. The ledger is idempotent by order id as well (`order-<id>`), a second line
of defence.

Forwarding: orders that are ready (`pending`) are recorded in
`session.info[FORWARD_AFTER_COMMIT]`, and after the outermost commit `enqueue_forwarding` puts
their forward jobs on the queue (app/orders/forwarding.py); a rollback drops the list. The order
row is committed before its job exists, and the sweeper picks up any order whose job was lost.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Insert, bindparam, event, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.accounts.models import CUSTOMER, User
from app.audit.services import record_audit
from app.catalog.models import Service
from app.catalog.order_types import order_type
from app.errors import NotFound, PasokError, ValidationError
from app.extensions import db
from app.ledger import InsufficientFunds, charge_order, charge_wholesale, refund_order
from app.orders.alerts import alert_owners_after_commit
from app.orders.models import (
    CANCELED,
    MAX_REF,
    ON_HOLD,
    PENDING,
    UNSENT,
    Order,
)
from app.orders.validation import WHOLE_NUMBER, OrderRejected, OrderRequest, validate_order
from app.panels.models import Tenant
from app.pricing.retail import Quote, ServiceNotForSale, price_list, quote
from app.types import utcnow
from tenants.context import current_scope, tenant_scope
from tenants.scoping import TenantScopeError

log = logging.getLogger(__name__)

FORWARD_AFTER_COMMIT = "orders_to_forward_after_commit"
MAX_MASS_LINES = 500
MAX_FORM_TOKEN_INPUT = 64  # a mass order's lines get "<token>:<line>", which the column still fits


class OrderNotCancelable(PasokError):
    def __init__(self, order_id: int):
        super().__init__(_l("This order has already been sent and can no longer be canceled"))
        self.order_id = order_id


class PanelSuspended(PasokError):
    def __init__(self):
        super().__init__(_l("Panel suspended"))


@dataclass(frozen=True)
class PlacedOrder:
    order_id: int
    status: str
    created: bool  # False: the same ref or form token already made this order

    @property
    def order(self) -> Order:
        return db.session.get(Order, self.order_id)


@dataclass(frozen=True)
class LineError:
    line: int
    field: str | None
    message: Any  # a lazy string: translated where it is shown


class MassOrderRejected(ValidationError):
    """Some lines of a mass order are wrong; nothing was placed. `errors` lists them all."""

    def __init__(self, errors: list[LineError]):
        super().__init__(_l("Some lines have errors; no order was placed"), "orders")
        self.errors = errors


@dataclass(frozen=True)
class _Prepared:
    service_id: int
    request: OrderRequest
    quote: Quote


# --- placing ---------------------------------------------------------------------------------


def place_order(
    *,
    tenant_id: int,
    customer_id: int,
    service_id: int | str,
    fields: dict[str, Any],
    ref: str | None = None,
    form_token: str | None = None,
    actor: User | str,
) -> PlacedOrder:
    """Validate, price and place one order, charging both wallets; see the module docstring.

    Raises `OrderRejected` for bad input or a service not for sale, `InsufficientFunds` when
    the customer cannot pay (nothing is written)."""
    ref = _key(ref, "ref", MAX_REF)
    form_token = _key(form_token, "form_token", MAX_FORM_TOKEN_INPUT)
    with _acting_for(tenant_id):
        tenant, customer = _tenant(tenant_id), _customer(tenant_id, customer_id)
        try:
            prepared = _prepare(tenant_id, customer_id, service_id, fields)
        except OrderRejected:
            # A retry of an order placed before its service changed still gets that order.
            found = _existing(tenant_id, customer_id, ref, form_token)
            if found is not None:
                return PlacedOrder(found.id, found.status, False)
            raise
        with all_or_nothing():
            placed = _place(tenant, customer, prepared, ref, form_token, actor)
    if placed.created and placed.status == PENDING:
        _forward_after_commit([placed.order_id])
    return placed


def place_orders_mass(
    tenant_id: int,
    customer_id: int,
    lines: str,
    actor: User | str,
    *,
    form_token: str | None = None,
) -> list[PlacedOrder]:
    """Place "service|link|quantity" lines (Default-type services) as one unit: every line is
    validated first (`MassOrderRejected` lists each bad line), then all are placed in one
    SAVEPOINT, so a customer who runs out of funds half-way has nothing placed or charged."""
    form_token = _key(form_token, "form_token", MAX_FORM_TOKEN_INPUT)
    with _acting_for(tenant_id):
        tenant, customer = _tenant(tenant_id), _customer(tenant_id, customer_id)
        prepared: list[tuple[int, _Prepared]] = []
        errors: list[LineError] = []
        for number, line in enumerate((lines or "").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                service_id, fields = _mass_line(line)
                prepared.append(
                    (number, _prepare(tenant_id, customer_id, service_id, fields, mass=True))
                )
            except OrderRejected as exc:
                errors.append(LineError(number, exc.field, exc.args[0]))
        if errors:
            raise MassOrderRejected(errors)
        if not prepared:
            raise OrderRejected(_l("Enter at least one order"), "orders")
        if len(prepared) > MAX_MASS_LINES:
            raise OrderRejected(_l("At most %(n)s orders at once", n=MAX_MASS_LINES), "orders")
        with all_or_nothing():
            placed = [
                _place(
                    tenant,
                    customer,
                    p,
                    None,
                    f"{form_token}:{number}" if form_token else None,
                    actor,
                )
                for number, p in prepared
            ]
    _forward_after_commit([p.order_id for p in placed if p.created and p.status == PENDING])
    return placed


def _mass_line(line: str) -> tuple[str, dict[str, str]]:
    parts = [part.strip() for part in line.split("|")]
    if len(parts) < 3:
        raise OrderRejected(_l("Write each order as service|link|quantity"), "orders")
    # A link may itself contain "|": the service is the first part, the quantity the last.
    return parts[0], {"link": "|".join(parts[1:-1]), "quantity": parts[-1]}


def _prepare(
    tenant_id: int,
    customer_id: int,
    service_id: int | str,
    fields: dict[str, Any],
    *,
    mass: bool = False,
) -> _Prepared:
    unknown = OrderRejected(_l("Unknown service"), "service")
    if isinstance(service_id, str):
        if not WHOLE_NUMBER.fullmatch(service_id.strip()):
            raise unknown
        service_id = int(service_id)
    if isinstance(service_id, bool) or not isinstance(service_id, int):
        raise unknown
    # The price list first: a service this tenant does not sell is unknown, whatever the input.
    if service_id not in price_list(tenant_id):
        raise unknown
    service = db.session.get(Service, service_id)
    if mass and order_type(service.type).required != ("link", "quantity"):
        raise OrderRejected(_l("This service cannot be ordered in bulk"), "service")
    request = validate_order(service, fields)
    try:
        priced = quote(tenant_id, service_id, customer_id, request.billed_units)
    except ServiceNotForSale:
        raise unknown from None
    return _Prepared(service_id, request, priced)


def _place(
    tenant: Tenant,
    customer: User,
    prepared: _Prepared,
    ref: str | None,
    form_token: str | None,
    actor: User | str,
) -> PlacedOrder:
    """Insert the order unless its ref or form token already made one, then charge it."""
    q, request = prepared.quote, prepared.request
    dialect = db.session.get_bind().dialect.name
    order_id = db.session.execute(
        _order_insert(dialect),
        {
            "tenant_id": tenant.id,
            "customer_id": customer.id,
            "service_id": prepared.service_id,
            "status": PENDING,
            "link": request.link,
            "quantity": request.quantity,
            "params": request.params,
            "retail_rate": q.rate,
            "charge": q.charge,
            "currency": q.currency,
            "discount_percent": q.discount_percent,
            "wholesale_rate": q.wholesale,
            "wholesale_charge": q.wholesale_charge,
            "platform_currency": q.platform_currency,
            "fx_rate": q.fx_rate,
            "ref": ref,
            "form_token": form_token,
            "attempts": 0,
        },
    ).scalar()
    if order_id is None:
        # Another request with the same key got there first (and has committed, or this
        # INSERT would still be waiting for it).
        found = _existing(tenant.id, customer.id, ref, form_token)
        if found is None:
            raise RuntimeError("order insert conflicted, but no order has its ref or form token")
        return PlacedOrder(found.id, found.status, False)
    charged = charge_order(customer, tenant, order_id, q.charge, q.wholesale_charge, actor=actor)
    if not charged.wholesale_pending:
        return PlacedOrder(order_id, PENDING, True)
    db.session.execute(
        update(Order)
        .where(Order.id == order_id)
        .values(status=ON_HOLD)
        .execution_options(synchronize_session=False)
    )
    alert_owners_after_commit(tenant.id)
    log.info("order %s of tenant %s is on hold: wholesale wallet short", order_id, tenant.id)
    return PlacedOrder(order_id, ON_HOLD, True)


_ORDER_COLUMNS = ("tenant_id", "customer_id", "service_id", "status", "link", "quantity")
_ORDER_COLUMNS += ("params", "retail_rate", "charge", "currency", "discount_percent")
_ORDER_COLUMNS += ("wholesale_rate", "wholesale_charge", "platform_currency", "fx_rate")
_ORDER_COLUMNS += ("ref", "form_token", "attempts")


@lru_cache(maxsize=4)
def _order_insert(dialect: str) -> Insert:
    """The order's INSERT, built once: building it costs more than running it."""
    table = Order.__table__
    values = {name: bindparam(name, type_=table.c[name].type) for name in _ORDER_COLUMNS}
    return (
        _insert_ignoring_conflict(table, dialect)
        .values(values)
        .on_conflict_do_nothing()
        .returning(table.c.id)
    )


def _existing(
    tenant_id: int, customer_id: int, ref: str | None, form_token: str | None
) -> Order | None:
    keys = []
    if ref is not None:
        keys.append(Order.ref == ref)
    if form_token is not None:
        keys.append(Order.form_token == form_token)
    if not keys:
        return None
    return db.session.scalars(
        select(Order)
        .where(Order.tenant_id == tenant_id, Order.customer_id == customer_id, or_(*keys))
        .order_by(Order.ref.is_(None), Order.id)  # a ref match first
    ).first()


# --- canceling and resuming ------------------------------------------------------------------


def cancel_unsent_order(
    order_id: int, customer_id: int, *, actor: User | str | None = None
) -> Order:
    """Cancel an order not yet sent upstream (`on_hold`, or `pending` through the same
    conditional claim the forwarder uses) and refund it in full; `OrderNotCancelable` once it
    has been claimed for sending. Runs in the caller's scope: another tenant's order, or another
    customer's, is `NotFound`."""
    order = db.session.scalar(
        select(Order).where(Order.id == order_id, Order.customer_id == customer_id)
    )
    if order is None:
        raise NotFound(_l("Incorrect order ID"))
    with _acting_for(order.tenant_id):
        if actor is None:
            actor = _customer(order.tenant_id, customer_id)
        with all_or_nothing():
            claimed = db.session.execute(
                update(Order)
                .where(
                    Order.id == order.id,
                    Order.customer_id == customer_id,
                    Order.status.in_(UNSENT),
                )
                .values(status=CANCELED, remains=Order.quantity, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            ).rowcount
            if claimed != 1:
                raise OrderNotCancelable(order.id)
            refund_order(order.id, actor=actor)
            record_audit(
                "order.cancel",
                actor=actor,
                tenant_id=order.tenant_id,
                target=f"order:{order.id}",
                details={"refund": "full"},
            )
        db.session.refresh(order)
    pending = db.session.info.get(FORWARD_AFTER_COMMIT)
    if pending and order.id in pending:
        pending.remove(order.id)
    return order


def resume_on_hold_orders(tenant_id: int, *, actor: User | str = "system") -> list[Order]:
    """After a top-up of the tenant's wholesale wallet: charge the snapshotted wholesale of its
    on-hold orders, oldest first, moving each to `pending`. It stops at the first order the
    wallet cannot pay (never skipping ahead to a cheaper, younger one), so orders go on in the
    order they were placed."""
    resumed: list[Order] = []
    with _acting_for(tenant_id):
        tenant = _tenant(tenant_id)
        held = db.session.scalars(
            select(Order)
            .where(Order.tenant_id == tenant_id, Order.status == ON_HOLD)
            .order_by(Order.id)
        ).all()
        for order in held:
            try:
                with all_or_nothing():
                    # The claim first: a concurrent cancel or resume of this order waits here.
                    claimed = db.session.execute(
                        update(Order)
                        .where(Order.id == order.id, Order.status == ON_HOLD)
                        .values(status=PENDING, updated_at=utcnow())
                        .execution_options(synchronize_session=False)
                    ).rowcount
                    if claimed == 1:
                        charge_wholesale(tenant, order.id, order.wholesale_charge, actor=actor)
            except InsufficientFunds:
                db.session.refresh(order)
                break
            db.session.refresh(order)
            if claimed == 1:
                resumed.append(order)
    _forward_after_commit([order.id for order in resumed])
    return resumed


# --- forwarding after commit -----------------------------------------------------------------


def orders_to_forward(session: Session | None = None) -> list[int]:
    """The orders this transaction made ready to send upstream (forwarded after its commit)."""
    return list((session or db.session).info.get(FORWARD_AFTER_COMMIT, ()))


def enqueue_forwarding(order_ids: list[int]) -> None:
    """Called after the commit that made these orders ready to send: their forward jobs go on
    the queue (app/orders/forwarding.py). It never raises; if Redis is down, the sweeper's scan
    of `pending` orders picks them up."""
    from app.orders.forwarding import enqueue_forwarding as enqueue

    enqueue(order_ids)


def _forward_after_commit(order_ids: list[int]) -> None:
    if order_ids:
        db.session.info.setdefault(FORWARD_AFTER_COMMIT, []).extend(order_ids)


# SQLAlchemy fires these for a SAVEPOINT's release and rollback too: only the outermost
# transaction's end says whether the orders are committed (another order's savepoint in the
# same transaction must neither send them early nor forget them).
@event.listens_for(Session, "after_commit")
def _forward_committed_orders(session: Session) -> None:
    if session.in_nested_transaction():
        return
    order_ids = session.info.pop(FORWARD_AFTER_COMMIT, None)
    if order_ids:
        enqueue_forwarding(order_ids)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back_orders(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(FORWARD_AFTER_COMMIT, None)


# --- helpers ---------------------------------------------------------------------------------


@contextmanager
def all_or_nothing() -> Iterator[None]:
    """A SAVEPOINT: if the block raises, everything it wrote is undone and the caller's
    transaction goes on; if it succeeds, its writes stay in the caller's transaction."""
    connection = db.session.connection()
    if (
        connection.dialect.name == "sqlite"
        and not connection.connection.dbapi_connection.in_transaction
    ):
        # pysqlite opens a transaction only before DML. A SAVEPOINT opened outside one becomes
        # the transaction itself, and its RELEASE would commit the caller's work.
        connection.exec_driver_sql("BEGIN")
    with db.session.begin_nested():
        yield


@contextmanager
def _acting_for(tenant_id: int) -> Iterator[None]:
    """Check that the caller may act for the tenant, then work in that tenant's scope."""
    scope = current_scope()
    if scope is None or not (scope.across_tenants or scope.tenant_id == tenant_id):
        raise TenantScopeError(f"orders of tenant {tenant_id} touched outside its scope")
    with tenant_scope(tenant_id):
        yield


def _tenant(tenant_id: int) -> Tenant:
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(_l("No such panel"))
    if tenant.is_suspended:
        raise PanelSuspended()
    return tenant


def _customer(tenant_id: int, customer_id: int) -> User:
    # An explicit check: `get` may answer from the identity map, without the scoped SQL.
    customer = db.session.get(User, customer_id)
    if customer is None or customer.tenant_id != tenant_id or customer.kind != CUSTOMER:
        raise NotFound(_l("No such customer"))
    return customer


def _key(value: str | None, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise OrderRejected(_l("%(field)s is not valid", field=name), name)
    value = value.strip()
    if len(value) > limit:
        raise OrderRejected(_l("%(field)s is at most %(n)s characters", field=name, n=limit), name)
    return value or None


def _insert_ignoring_conflict(model, dialect: str | None = None):
    dialect = dialect or db.session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(f"orders run on PostgreSQL or SQLite, not {dialect}")
