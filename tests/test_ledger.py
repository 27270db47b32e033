"""The double-entry ledger: every movement balances, happens once per key, never overspends a
wallet (on PostgreSQL too, under concurrency), and stays inside its tenant."""

from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, text

from app import create_app
from app.accounts.models import User
from app.audit.models import AuditEntry
from app.errors import NotFound, ValidationError
from app.extensions import db
from app.money import pro_rata_refund
from app.money.currency import currency as lookup_currency
from app.panels.models import Tenant
from tenants.context import across_tenants, platform_scope, tenant_scope
from tenants.scoping import TenantScopeError
from tests.conftest import (
    TEST_DATABASE_URL,
    Factories,
    empty_database,
    service_missing,
    watch_balance,
)

D = Decimal


@pytest.fixture
def ledger():
    from app import ledger

    return ledger


@dataclass
class Panels:
    """Two tenants (acme in USD, toko in IDR) and their customers, loaded in one session."""

    acme: Tenant
    toko: Tenant
    alice: User
    bob: User
    budi: User


def load_panels(ids: dict[str, int]) -> Panels:
    with across_tenants():
        return Panels(
            acme=db.session.get(Tenant, ids["acme"]),
            toko=db.session.get(Tenant, ids["toko"]),
            alice=db.session.get(User, ids["alice"]),
            bob=db.session.get(User, ids["bob"]),
            budi=db.session.get(User, ids["budi"]),
        )


def create_panels(make: Factories) -> dict[str, int]:
    acme = make.tenant("acme")
    toko = make.tenant("toko", currency="IDR")
    return {
        "acme": acme,
        "toko": toko,
        "alice": make.customer(acme, "alice@example.com"),
        "bob": make.customer(acme, "bob@example.com"),
        "budi": make.customer(toko, "budi@example.com"),
    }


@pytest.fixture
def panels(app, make, ledger):
    """An app context working across tenants, with the two panels loaded."""
    ids = create_panels(make)
    with app.app_context(), across_tenants():
        yield load_panels(ids)
        db.session.rollback()


def entries(ledger) -> int:
    return db.session.scalar(select(func.count(ledger.JournalEntry.id)))


def sums_per_currency(entry) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for posting in entry.postings:
        totals[posting.currency] = totals.get(posting.currency, D(0)) + posting.amount
    return totals


def ledger_audit():
    return db.session.scalars(
        select(AuditEntry).where(AuditEntry.action.like("ledger.%")).order_by(AuditEntry.id)
    ).all()


def fund(ledger, p: Panels, customer: User, amount: str, ref: str = "cs_fund") -> None:
    ledger.credit_topup(customer, D(amount), "stripe", ref)


# --- top-ups -------------------------------------------------------------------------------


def test_a_topup_moves_money_from_the_tenants_gateway_clearing_to_the_wallet(ledger, panels):
    entry = ledger.credit_topup(panels.alice, D("10.00"), "stripe", "cs_1", topup_id=7)
    wallet = ledger.wallet_of(panels.alice)
    assert ledger.balance(wallet) == D("10.00")
    assert wallet.currency == "USD" and wallet.tenant_id == panels.acme.id
    assert entry.idempotency_key == "topup:stripe:cs_1" and entry.topup_id == 7
    assert {(p.account.kind, p.account.tenant_id, p.amount) for p in entry.postings} == {
        ("gateway_clearing", panels.acme.id, D("-10.00")),
        ("customer_wallet", panels.acme.id, D("10.00")),
    }
    assert sums_per_currency(entry) == {"USD": 0}


def test_a_topup_is_credited_once_per_gateway_and_external_id(ledger, panels):
    first = ledger.credit_topup(panels.alice, D("10.00"), "stripe", "cs_1")
    again = ledger.credit_topup(panels.alice, D("10.00"), "Stripe", "cs_1")
    assert again.id == first.id
    assert ledger.balance(ledger.wallet_of(panels.alice)) == D("10.00")
    assert entries(ledger) == 1
    ledger.credit_topup(panels.alice, D("10.00"), "midtrans", "cs_1")
    assert ledger.balance(ledger.wallet_of(panels.alice)) == D("20.00")


def test_the_same_topup_key_with_another_amount_or_wallet_is_a_conflict(ledger, panels):
    ledger.credit_topup(panels.alice, D("10.00"), "stripe", "cs_1")
    with pytest.raises(ledger.IdempotencyConflict, match="amount differ"):
        ledger.credit_topup(panels.alice, D("12.00"), "stripe", "cs_1")
    with pytest.raises(ledger.IdempotencyConflict, match="account differ"):
        ledger.credit_topup(panels.bob, D("10.00"), "stripe", "cs_1")
    assert ledger.balance(ledger.wallet_of(panels.bob)) == 0


def test_a_tenant_pays_its_wholesale_topup_through_the_platforms_clearing(ledger, panels):
    entry = ledger.credit_topup(panels.toko, D("25.00"), "stripe", "cs_w1")
    wallet = ledger.wholesale_wallet_of(panels.toko)
    assert wallet.currency == "USD"  # the platform currency, whatever the tenant sells in
    assert ledger.balance(wallet) == D("25.00")
    clearing = next(p.account for p in entry.postings if p.amount < 0)
    assert clearing.kind == "gateway_clearing" and clearing.tenant_id is None


@pytest.mark.parametrize("amount", ["0", "-1"])
def test_a_topup_must_be_positive(ledger, panels, amount):
    with pytest.raises(ValidationError, match="more than zero"):
        ledger.credit_topup(panels.alice, D(amount), "stripe", "cs_1")


def test_an_amount_finer_than_the_currency_keeps_is_a_programming_error(ledger, panels):
    with pytest.raises(ValueError, match="places"):
        ledger.credit_topup(panels.budi, D("100.005"), "midtrans", "m-1")
    with pytest.raises(TypeError, match="float"):
        ledger.credit_topup(panels.alice, 1.5, "stripe", "cs_1")


def test_wallets_are_created_once(ledger, panels):
    first = ledger.wallet_of(panels.alice)
    assert ledger.wallet_of(panels.alice).id == first.id
    assert first.key == f"customer_wallet:t{panels.acme.id}:c{panels.alice.id}:-:USD"
    assert ledger.wholesale_wallet_of(panels.acme).id == ledger.wholesale_wallet_of(panels.acme).id
    with pytest.raises(ValueError, match="not a customer"):
        ledger.wallet_of(db.session.scalar(select(User).where(User.kind == "staff")))


# --- orders --------------------------------------------------------------------------------


def test_an_order_charges_both_wallets_each_in_its_own_currency(ledger, panels):
    fund(ledger, panels, panels.budi, "50000.00")
    ledger.topup_tenant(panels.toko, D("10.00"), "opening balance", "test")
    charged = ledger.charge_order(panels.budi, panels.toko, 1, D("15000.00"), D("0.90000"))
    assert not charged.wholesale_pending
    assert ledger.balance(ledger.wallet_of(panels.budi)) == D("35000.00")
    assert ledger.balance(ledger.wholesale_wallet_of(panels.toko)) == D("9.10")
    for entry in (charged.entry, charged.wholesale_entry):
        assert entry.order_id == 1 and entry.tenant_id == panels.toko.id
    assert sums_per_currency(charged.entry) == {"IDR": 0}
    assert sums_per_currency(charged.wholesale_entry) == {"USD": 0}
    sales = {p.account.kind: p.amount for p in charged.wholesale_entry.postings}
    assert sales == {"tenant_wholesale_wallet": D("-0.9"), "platform_sales": D("0.9")}


def test_an_order_the_customer_cannot_afford_moves_nothing(ledger, panels):
    fund(ledger, panels, panels.alice, "1.00")
    ledger.topup_tenant(panels.acme, D("10.00"), "opening balance", "test")
    before = entries(ledger)
    with pytest.raises(ledger.InsufficientFunds, match="Not enough funds on balance"):
        ledger.charge_order(panels.alice, panels.acme, 1, D("1.00001"), D("0.5"))
    assert entries(ledger) == before
    assert ledger.balance(ledger.wallet_of(panels.alice)) == D("1.00")
    assert ledger.balance(ledger.wholesale_wallet_of(panels.acme)) == D("10.00")
    # The key was not used up: the order can be charged once the customer tops up.
    fund(ledger, panels, panels.alice, "1.00", "cs_more")
    assert not ledger.charge_order(
        panels.alice, panels.acme, 1, D("1.00001"), D("0.5")
    ).wholesale_pending


def test_a_short_tenant_wallet_still_charges_the_customer_and_leaves_the_wholesale_pending(
    ledger, panels
):
    fund(ledger, panels, panels.alice, "5.00")
    ledger.topup_tenant(panels.acme, D("0.40"), "opening balance", "test")
    charged = ledger.charge_order(panels.alice, panels.acme, 1, D("2.00"), D("0.50"))
    assert charged.wholesale_pending
    assert ledger.balance(ledger.wallet_of(panels.alice)) == D("3.00")
    assert ledger.balance(ledger.wholesale_wallet_of(panels.acme)) == D("0.40")
    with pytest.raises(ledger.InsufficientFunds):
        ledger.charge_wholesale(panels.acme, 1, D("0.50"))
    ledger.topup_tenant(panels.acme, D("0.10"), "top-up", "test")
    entry = ledger.charge_wholesale(panels.acme, 1, D("0.50"))
    assert ledger.balance(ledger.wholesale_wallet_of(panels.acme)) == 0
    assert ledger.charge_wholesale(panels.acme, 1, D("0.50")).id == entry.id
    assert ledger.balance(ledger.wholesale_wallet_of(panels.acme)) == 0


def test_charging_an_order_again_reports_the_first_charge_and_moves_nothing(ledger, panels):
    fund(ledger, panels, panels.alice, "5.00")
    first = ledger.charge_order(panels.alice, panels.acme, 1, D("2.00"), D("0.50"))
    assert first.wholesale_pending
    ledger.topup_tenant(panels.acme, D("10.00"), "top-up", "test")
    again = ledger.charge_order(panels.alice, panels.acme, 1, D("2.00"), D("0.50"))
    assert again.entry.id == first.entry.id and again.wholesale_pending
    assert ledger.balance(ledger.wallet_of(panels.alice)) == D("3.00")
    assert ledger.balance(ledger.wholesale_wallet_of(panels.acme)) == D("10.00")
    with pytest.raises(ledger.IdempotencyConflict, match="retail differ"):
        ledger.charge_order(panels.alice, panels.acme, 1, D("2.50"), D("0.50"))


def test_charge_wholesale_charges_the_snapshot_of_a_charged_order_only(ledger, panels):
    fund(ledger, panels, panels.alice, "5.00")
    ledger.charge_order(panels.alice, panels.acme, 1, D("2.00"), D("0.50"))
    ledger.topup_tenant(panels.acme, D("10.00"), "top-up", "test")
    with pytest.raises(ledger.IdempotencyConflict, match="wholesale differ"):
        ledger.charge_wholesale(panels.acme, 1, D("0.40"))
    with pytest.raises(ledger.OrderNotCharged):
        ledger.charge_wholesale(panels.acme, 99, D("0.50"))
    with pytest.raises(ledger.OrderNotCharged):
        ledger.charge_wholesale(panels.toko, 1, D("0.50"))


def test_a_negative_wallet_cannot_order_even_for_free(ledger, panels):
    fund(ledger, panels, panels.alice, "5.00", "cs_1")
    ledger.charge_order(panels.alice, panels.acme, 1, D("4.00"), D("0"))
    ledger.clawback(panels.alice, D("5.00"), "stripe", "cs_1", "dispute lost", cause="refund")
    with pytest.raises(ledger.InsufficientFunds):
        ledger.charge_order(panels.alice, panels.acme, 2, D("0"), D("0"))


# --- refunds -------------------------------------------------------------------------------


def test_a_full_refund_returns_both_parts(ledger, panels):
    fund(ledger, panels, panels.alice, "5.00")
    ledger.topup_tenant(panels.acme, D("1.00"), "top-up", "test")
    ledger.charge_order(panels.alice, panels.acme, 1, D("2.00"), D("0.50"))
    entry = ledger.refund_order(1)
    assert entry.idempotency_key == "refund-1" and entry.kind == "refund"
    assert sums_per_currency(entry) == {"USD": 0}
    assert ledger.balance(ledger.wallet_of(panels.alice)) == D("5.00")
    assert ledger.balance(ledger.wholesale_wallet_of(panels.acme)) == D("1.00")
    assert ledger.refund_order(1).id == entry.id
    assert ledger.balance(ledger.wallet_of(panels.alice)) == D("5.00")


def test_refunding_an_on_hold_order_returns_only_the_retail(ledger, panels):
    fund(ledger, panels, panels.alice, "5.00")
    assert ledger.charge_order(panels.alice, panels.acme, 1, D("2.00"), D("0.50")).wholesale_pending
    ledger.refund_order(1)
    assert ledger.balance(ledger.wallet_of(panels.alice)) == D("5.00")
    assert ledger.balance(ledger.wholesale_wallet_of(panels.acme)) == 0
    ledger.topup_tenant(panels.acme, D("1.00"), "top-up", "test")
    with pytest.raises(ledger.OrderRefunded):
        ledger.charge_wholesale(panels.acme, 1, D("0.50"))


def test_a_partial_refund_is_pro_rata_and_rounds_toward_zero(ledger, panels):
    fund(ledger, panels, panels.alice, "5.00")
    ledger.topup_tenant(panels.acme, D("1.00"), "top-up", "test")
    ledger.charge_order(panels.alice, panels.acme, 1, D("1.00000"), D("0.50000"))
    entry = ledger.refund_remainder(1, 3, 1)
    assert entry.idempotency_key == "partial-1"
    assert ledger.balance(ledger.wallet_of(panels.alice)) == D("4.33333")
    assert ledger.balance(ledger.wholesale_wallet_of(panels.acme)) == D("0.66666")
    assert ledger.refund_remainder(1, 3, 1).id == entry.id
    with pytest.raises(ledger.IdempotencyConflict, match="remains differ"):
        ledger.refund_remainder(1, 3, 2)
    assert ledger.balance(ledger.wallet_of(panels.alice)) == D("4.33333")


def test_refunds_never_exceed_what_was_charged(ledger, panels):
    fund(ledger, panels, panels.alice, "5.00")
    ledger.topup_tenant(panels.acme, D("1.00"), "top-up", "test")
    ledger.charge_order(panels.alice, panels.acme, 1, D("1.00"), D("0.50"))
    ledger.refund_remainder(1, 1000, 1000)  # nothing delivered: the whole charge back
    ledger.refund_order(1)  # nothing is left to refund
    totals = ledger.order_totals(1)
    assert (totals.retail_charged, totals.retail_refunded) == (D("1.00"), D("1.00"))
    assert (totals.wholesale_charged, totals.wholesale_refunded) == (D("0.50"), D("0.50"))
    assert ledger.balance(ledger.wallet_of(panels.alice)) == D("5.00")
    assert ledger.verify_ledger().ok


def test_an_order_that_was_never_charged_cannot_be_refunded(ledger, panels):
    with pytest.raises(ledger.OrderNotCharged):
        ledger.refund_order(42)
    with pytest.raises(ledger.OrderNotCharged):
        ledger.refund_remainder(42, 10, 5)


# --- manual adjustments and clawbacks ------------------------------------------------------


def test_a_customer_adjustment_needs_a_reason_and_is_audited(ledger, panels):
    entry = ledger.adjust_customer(panels.alice, D("5.00"), "  goodwill  ", "op@example.com")
    assert ledger.balance(ledger.wallet_of(panels.alice)) == D("5.00")
    assert entry.memo == "goodwill" and entry.actor == "op@example.com"
    contra = next(p.account for p in entry.postings if p.amount < 0)
    assert contra.kind == "adjustments" and contra.tenant_id == panels.acme.id
    [audit] = ledger_audit()
    assert audit.action == "ledger.adjust_customer" and audit.tenant_id == panels.acme.id
    assert audit.details["amount"] == "5.00000" and audit.details["reason"] == "goodwill"
    with pytest.raises(ValidationError, match="reason is required"):
        ledger.adjust_customer(panels.alice, D("5.00"), "  ", "op@example.com")
    with pytest.raises(ValidationError, match="not be zero"):
        ledger.adjust_customer(panels.alice, D("0"), "nothing", "op@example.com")


def test_a_debit_adjustment_cannot_overdraw_the_wallet(ledger, panels):
    ledger.adjust_customer(panels.alice, D("5.00"), "goodwill", "test")
    with pytest.raises(ledger.InsufficientFunds):
        ledger.adjust_customer(panels.alice, D("-5.01"), "correction", "test")
    ledger.adjust_customer(panels.alice, D("-5.00"), "correction", "test")
    assert ledger.balance(ledger.wallet_of(panels.alice)) == 0
    assert len(ledger_audit()) == 2


def test_an_adjustment_with_a_key_happens_once(ledger, panels):
    first = ledger.adjust_customer(panels.alice, D("5.00"), "goodwill", "test", key="ticket-9")
    again = ledger.adjust_customer(panels.alice, D("5.00"), "goodwill", "test", key="ticket-9")
    assert again.id == first.id
    assert ledger.balance(ledger.wallet_of(panels.alice)) == D("5.00")
    assert len(ledger_audit()) == 1


def test_an_operator_tops_up_a_wholesale_wallet_from_the_platforms_adjustments(ledger, panels):
    entry = ledger.topup_tenant(panels.toko, D("30.00"), "bank transfer 17/05", "cli")
    assert ledger.balance(ledger.wholesale_wallet_of(panels.toko)) == D("30.00")
    contra = next(p.account for p in entry.postings if p.amount < 0)
    assert contra.kind == "adjustments" and contra.tenant_id is None
    [audit] = ledger_audit()
    assert (audit.action, audit.target, audit.actor_label) == (
        "ledger.topup_tenant",
        "tenant:toko",
        "cli",
    )
    with pytest.raises(ledger.InsufficientFunds):
        ledger.topup_tenant(panels.toko, D("-30.01"), "correction", "cli")


def test_a_clawback_may_take_a_wallet_below_zero_and_verify_flags_it(ledger, panels):
    fund(ledger, panels, panels.alice, "10.00", "cs_1")
    ledger.charge_order(panels.alice, panels.acme, 1, D("8.00"), D("0"))
    entry = ledger.clawback(
        panels.alice, D("10.00"), "stripe", "cs_1", "dispute lost", cause="refund"
    )
    assert entry.kind == "clawback" and sums_per_currency(entry) == {"USD": 0}
    assert ledger.balance(ledger.wallet_of(panels.alice)) == D("-8.00")
    assert (
        ledger.clawback(panels.alice, D("10.00"), "stripe", "cs_1", "again", cause="refund").id
        == entry.id
    )
    report = ledger.verify_ledger()
    assert report.ok
    assert [(f.account, f.balance) for f in report.flagged] == [
        (ledger.wallet_of(panels.alice).key, D("-8.00"))
    ]
    assert [a.action for a in ledger_audit()] == ["ledger.clawback"]


def test_a_clawback_takes_back_at_most_a_credited_topup(ledger, panels):
    fund(ledger, panels, panels.alice, "10.00", "cs_1")
    with pytest.raises(ValidationError, match="exceed"):
        ledger.clawback(panels.alice, D("10.01"), "stripe", "cs_1", "refund", cause="refund")
    with pytest.raises(NotFound):
        ledger.clawback(panels.alice, D("1.00"), "stripe", "cs_unknown", "refund", cause="refund")
    with pytest.raises(NotFound):
        ledger.clawback(panels.bob, D("1.00"), "stripe", "cs_1", "refund", cause="refund")
    with pytest.raises(ValidationError, match="reason"):
        ledger.clawback(panels.alice, D("1.00"), "stripe", "cs_1", "", cause="refund")


def test_each_cause_claws_back_once_and_a_won_dispute_gives_it_back(ledger, panels):
    fund(ledger, panels, panels.alice, "10.00", "cs_1")
    ledger.clawback(panels.alice, D("3.00"), "stripe", "cs_1", "refund", cause="refund-300")
    ledger.clawback(panels.alice, D("3.00"), "stripe", "cs_1", "refund", cause="refund-300")
    ledger.clawback(panels.alice, D("7.00"), "stripe", "cs_1", "dispute", cause="dispute-dp_1")
    assert ledger.balance(ledger.wallet_of(panels.alice)) == D("0.00")
    first = ledger.restore_topup(
        panels.alice, D("7.00"), "stripe", "cs_1", "dispute won", cause="dispute-dp_1"
    )
    again = ledger.restore_topup(
        panels.alice, D("7.00"), "stripe", "cs_1", "dispute won", cause="dispute-dp_1"
    )
    assert again.id == first.id and sums_per_currency(first) == {"USD": 0}
    assert ledger.balance(ledger.wallet_of(panels.alice)) == D("7.00")
    assert ledger.verify_ledger().ok


def test_a_tenants_wholesale_topup_can_be_clawed_back(ledger, panels):
    ledger.credit_topup(panels.acme, D("20.00"), "stripe", "cs_w1")
    ledger.clawback(panels.acme, D("20.00"), "stripe", "cs_w1", "chargeback", cause="refund")
    assert ledger.balance(ledger.wholesale_wallet_of(panels.acme)) == 0


# --- verify --------------------------------------------------------------------------------


def busy_ledger(ledger, p: Panels) -> None:
    fund(ledger, p, p.alice, "10.00")
    fund(ledger, p, p.budi, "100000.00", "m-1")
    ledger.topup_tenant(p.acme, D("5.00"), "opening", "test")
    ledger.charge_order(p.alice, p.acme, 1, D("3.00"), D("1.00"))
    ledger.charge_order(p.budi, p.toko, 2, D("20000.00"), D("1.20"))
    ledger.refund_remainder(1, 100, 40)


def test_verify_passes_on_a_consistent_ledger(ledger, panels):
    busy_ledger(ledger, panels)
    report = ledger.verify_ledger()
    assert report.ok, report.as_dict()
    assert report.accounts > 0 and report.entries == 7 and report.postings > 0
    assert not report.flagged


def test_verify_catches_a_tampered_cached_balance(ledger, panels):
    busy_ledger(ledger, panels)
    wallet = ledger.wallet_of(panels.alice)
    db.session.execute(
        text("UPDATE ledger_accounts SET balance = balance + 1 WHERE id = :id"), {"id": wallet.id}
    )
    report = ledger.verify_ledger()
    assert not report.ok
    assert [(d.account, d.cached - d.computed) for d in report.drift] == [
        (wallet.key, D("0.000001"))
    ]
    assert not report.unbalanced


def test_verify_catches_a_tampered_posting(ledger, panels):
    busy_ledger(ledger, panels)
    posting = db.session.scalars(select(ledger.Posting).order_by(ledger.Posting.id)).first()
    db.session.execute(
        text("UPDATE postings SET amount = amount - 100 WHERE id = :id"), {"id": posting.id}
    )
    report = ledger.verify_ledger()
    assert [(u.entry_id, u.total) for u in report.unbalanced] == [(posting.entry_id, D("-0.0001"))]
    assert [d.account for d in report.drift] == [posting.account.key]


def test_verify_catches_a_posting_in_the_wrong_currency(ledger, panels):
    busy_ledger(ledger, panels)
    posting = db.session.scalars(select(ledger.Posting).order_by(ledger.Posting.id)).first()
    db.session.execute(
        text("UPDATE postings SET currency = 'IDR' WHERE id = :id"), {"id": posting.id}
    )
    report = ledger.verify_ledger()
    assert [m.posting_id for m in report.mismatched] == [posting.id]
    assert not report.ok


def test_verify_reads_every_tenant_so_it_runs_only_across_tenants(ledger, panels):
    with tenant_scope(panels.acme.id), pytest.raises(TenantScopeError):
        ledger.verify_ledger()


# --- tenancy -------------------------------------------------------------------------------


def test_a_tenant_scope_sees_only_its_own_wallets_entries_and_postings(ledger, panels):
    busy_ledger(ledger, panels)
    with tenant_scope(panels.acme.id):
        accounts = db.session.scalars(select(ledger.LedgerAccount)).all()
        journal = db.session.scalars(select(ledger.JournalEntry)).all()
        postings = db.session.scalars(select(ledger.Posting)).all()
    assert accounts and journal and postings
    assert {a.tenant_id for a in accounts} == {panels.acme.id}
    assert {e.tenant_id for e in journal} == {panels.acme.id}
    assert {p.tenant_id for p in postings} == {panels.acme.id}
    # Its side of the wholesale charge, never the platform's sales.
    assert "platform_sales" not in {a.kind for a in accounts}


def test_a_tenant_scope_cannot_touch_another_tenants_ledger(ledger, panels):
    fund(ledger, panels, panels.budi, "100000.00", "m-1")
    ledger.charge_order(panels.budi, panels.toko, 2, D("20000.00"), D("0"))
    with tenant_scope(panels.acme.id):
        with pytest.raises(TenantScopeError):
            ledger.wallet_of(panels.budi)
        with pytest.raises(TenantScopeError):
            ledger.credit_topup(panels.budi, D("1.00"), "stripe", "cs_x")
        with pytest.raises(TenantScopeError):
            ledger.charge_order(panels.budi, panels.toko, 3, D("1.00"), D("0"))
        with pytest.raises(TenantScopeError):
            ledger.topup_tenant(panels.toko, D("1.00"), "no", "test")
        with pytest.raises(ledger.OrderNotCharged):
            ledger.refund_order(2)  # another tenant's order does not exist here
    with platform_scope(), pytest.raises(TenantScopeError):
        ledger.wallet_of(panels.budi)
    with across_tenants():
        assert ledger.balance(ledger.wallet_of(panels.budi)) == D("80000.00")


def test_the_ledger_refuses_to_work_with_no_scope(ledger, app, make):
    ids = create_panels(make)
    with app.app_context():
        with across_tenants():
            alice = db.session.get(User, ids["alice"])
        with pytest.raises(TenantScopeError, match="no tenant in scope"):
            ledger.wallet_of(alice)


def test_a_tenants_own_scope_charges_the_platform_side_too(ledger, panels):
    fund(ledger, panels, panels.alice, "5.00")
    ledger.topup_tenant(panels.acme, D("1.00"), "opening", "test")
    with tenant_scope(panels.acme.id):
        charged = ledger.charge_order(panels.alice, panels.acme, 1, D("2.00"), D("0.50"))
        assert not charged.wholesale_pending
        db.session.commit()
    platform_sales = db.session.scalars(
        select(ledger.LedgerAccount).where(ledger.LedgerAccount.kind == "platform_sales")
    ).one()
    assert ledger.balance(platform_sales) == D("0.50")
    assert ledger.verify_ledger().ok


# --- the CLI -------------------------------------------------------------------------------


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def invoke(command, *args):
        return runner.invoke(command, list(args))

    return invoke


def test_cli_customer_credit_and_tenant_topup(cli, app, make, ledger):
    from app.ledger.commands import customer_credit_command, tenant_topup_command

    create_panels(make)
    result = cli(
        customer_credit_command,
        *("--tenant", "toko", "--email", "Budi@Example.com", "--amount", "15000.50"),
        *("--reason", "welcome bonus"),
    )
    assert result.exit_code == 0, result.output
    assert (
        "Credited 15000.50 IDR to budi@example.com on toko; balance 15000.50 IDR." in result.output
    )
    debit = cli(
        customer_credit_command,
        *("--tenant", "toko", "--email", "budi@example.com", "--amount=-0.50", "--reason", "fix"),
    )
    assert debit.exit_code == 0, debit.output
    assert "balance 15000.00 IDR" in debit.output
    topped = cli(tenant_topup_command, "acme", "--amount", "25.5", "--reason", "wire 0517")
    assert topped.exit_code == 0, topped.output
    assert "balance 25.50000 USD" in topped.output
    with app.app_context(), across_tenants():
        assert {a.action for a in db.session.scalars(select(AuditEntry))} >= {
            "ledger.adjust_customer",
            "ledger.topup_tenant",
        }


@pytest.mark.parametrize(
    "args, message",
    [
        (("--tenant", "nope", "--email", "budi@example.com"), "No tenant 'nope'"),
        (("--tenant", "toko", "--email", "nobody@example.com"), "No customer nobody@example.com"),
        (("--tenant", "toko", "--email", "not-an-email"), "valid email"),
    ],
)
def test_cli_customer_credit_refuses_unknown_people_in_one_line(cli, make, args, message):
    from app.ledger.commands import customer_credit_command

    create_panels(make)
    result = cli(customer_credit_command, *args, "--amount", "1", "--reason", "r")
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "amount, message",
    [
        ("1,000.00", "without thousands separators"),
        ("1.005", "at most 2 decimal places"),
        ("abc", "is not a number"),
        ("0", "not be zero"),
    ],
)
def test_cli_refuses_a_bad_amount_in_one_line(cli, make, amount, message):
    from app.ledger.commands import customer_credit_command

    create_panels(make)
    result = cli(
        customer_credit_command,
        *("--tenant", "toko", "--email", "budi@example.com", "--amount", amount),
        *("--reason", "r"),
    )
    assert result.exit_code != 0 and message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_debit_beyond_the_balance_is_refused(cli, make):
    from app.ledger.commands import tenant_topup_command

    create_panels(make)
    result = cli(tenant_topup_command, "acme", "--amount=-1", "--reason", "fix")
    assert result.exit_code != 0 and "Not enough funds on balance" in result.output


def test_cli_ledger_verify_exits_non_zero_on_drift(cli, app, make, ledger):
    from app.ledger.commands import ledger_cli

    ids = create_panels(make)
    with app.app_context(), across_tenants():
        busy_ledger(ledger, load_panels(ids))
        db.session.commit()
    good = cli(ledger_cli, "verify")
    assert good.exit_code == 0, good.output
    assert "OK: every balance matches" in good.output
    assert json.loads(cli(ledger_cli, "verify", "--json").output)["ok"] is True
    with app.app_context():
        db.session.execute(text("UPDATE ledger_accounts SET balance = balance + 7"))
        db.session.commit()
    bad = cli(ledger_cli, "verify")
    assert bad.exit_code == 1
    assert "DRIFT customer_wallet" in bad.output and "verification failed" in bad.output
    report = json.loads(cli(ledger_cli, "verify", "--json").stdout)
    assert report["ok"] is False and report["drift"]


# --- every sequence of movements balances --------------------------------------------------


@pytest.fixture(scope="module")
def property_app(migrated, base_config):
    """Its own app and panels, since Hypothesis replays the test body without fixtures."""
    app = create_app(base_config)
    empty_database(app)
    ids = create_panels(Factories(app))
    yield app, ids
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@dataclass
class Model:
    """What the wallets should hold, computed apart from the ledger."""

    wallets: dict[str, Decimal] = field(default_factory=dict)
    orders: dict[int, dict] = field(default_factory=dict)
    topups: list[tuple[str, str, Decimal]] = field(default_factory=list)
    clawed: set[str] = field(default_factory=set)


customer_names = st.sampled_from(["alice", "bob", "budi"])
tenant_names = st.sampled_from(["acme", "toko"])
units = st.integers(min_value=0, max_value=3_000_000)
movements = st.one_of(
    st.tuples(st.just("topup"), customer_names, units),
    st.tuples(st.just("tenant_topup"), tenant_names, units),
    st.tuples(st.just("adjust"), customer_names, st.integers(-3_000_000, 3_000_000)),
    st.tuples(st.just("order"), customer_names, units, st.integers(0, 300_000)),
    st.tuples(st.just("wholesale"), st.integers(0, 30)),
    st.tuples(st.just("refund"), st.integers(0, 30)),
    st.tuples(st.just("partial"), st.integers(0, 30), st.integers(1, 1000), st.integers(0, 1000)),
    st.tuples(st.just("clawback"), st.integers(0, 30)),
)


@settings(max_examples=30, deadline=None)
@given(st.lists(movements, max_size=25))
def test_any_sequence_of_movements_balances_and_matches_the_wallets(property_app, sequence):
    from app import ledger

    app, ids = property_app
    with app.app_context(), across_tenants():
        for model in (AuditEntry, ledger.Posting, ledger.JournalEntry, ledger.LedgerAccount):
            db.session.execute(delete(model))
        p = load_panels(ids)
        tenant_of = {"alice": p.acme, "bob": p.acme, "budi": p.toko}
        people = {"alice": p.alice, "bob": p.bob, "budi": p.budi}
        model = Model()

        def amount(n: int, currency: str) -> Decimal:
            return D(n).scaleb(-lookup_currency(currency).ledger_places)

        def holds(name: str) -> Decimal:
            return model.wallets.get(name, D(0))

        def move(name: str, delta: Decimal) -> None:
            model.wallets[name] = holds(name) + delta

        for step, movement in enumerate(sequence):
            kind = movement[0]
            if kind == "topup":
                _, who, n = movement
                value = amount(max(n, 1), tenant_of[who].currency)
                ledger.credit_topup(people[who], value, "stripe", f"cs_{step}")
                move(who, value)
                model.topups.append((who, f"cs_{step}", value))
            elif kind == "tenant_topup":
                _, tenant, n = movement
                value = amount(max(n, 1), "USD")
                ledger.topup_tenant(getattr(p, tenant), value, "top-up", "test")
                move(tenant, value)
            elif kind == "adjust":
                _, who, n = movement
                value = amount(n, tenant_of[who].currency)
                if value == 0:
                    continue
                if value < 0 and holds(who) < -value:
                    with pytest.raises(ledger.InsufficientFunds):
                        ledger.adjust_customer(people[who], value, "fix", "test")
                    continue
                ledger.adjust_customer(people[who], value, "fix", "test")
                move(who, value)
            elif kind == "order":
                _, who, n, w = movement
                tenant = tenant_of[who]
                retail, wholesale = amount(n, tenant.currency), amount(w, "USD")
                if holds(who) < retail:  # a negative wallet cannot order, even for free
                    with pytest.raises(ledger.InsufficientFunds):
                        ledger.charge_order(people[who], tenant, step, retail, wholesale)
                    continue
                charged = ledger.charge_order(people[who], tenant, step, retail, wholesale)
                move(who, -retail)
                paid = holds(tenant.slug) >= wholesale
                assert charged.wholesale_pending is not paid
                if paid:
                    move(tenant.slug, -wholesale)
                model.orders[step] = {
                    "who": who,
                    "tenant": tenant.slug,
                    "retail": retail,
                    "wholesale": wholesale,
                    "paid": paid,
                    "retail_back": D(0),
                    "wholesale_back": D(0),
                    "refunded": False,
                    "partial": None,
                }
            elif kind in ("wholesale", "refund", "partial") and model.orders:
                order_id = sorted(model.orders)[movement[1] % len(model.orders)]
                order = model.orders[order_id]
                tenant = getattr(p, order["tenant"])
                if kind == "wholesale":
                    if order["paid"]:
                        ledger.charge_wholesale(tenant, order_id, order["wholesale"])
                    elif order["refunded"] or order["partial"]:
                        with pytest.raises(ledger.OrderRefunded):
                            ledger.charge_wholesale(tenant, order_id, order["wholesale"])
                    elif holds(order["tenant"]) < order["wholesale"]:
                        with pytest.raises(ledger.InsufficientFunds):
                            ledger.charge_wholesale(tenant, order_id, order["wholesale"])
                    else:
                        ledger.charge_wholesale(tenant, order_id, order["wholesale"])
                        move(order["tenant"], -order["wholesale"])
                        order["paid"] = True
                    continue
                wholesale_charged = order["wholesale"] if order["paid"] else D(0)
                if kind == "refund":
                    retail_share, wholesale_share = order["retail"], wholesale_charged
                    ledger.refund_order(order_id)
                    if order["refunded"]:
                        continue
                    order["refunded"] = True
                else:
                    quantity = movement[2]
                    remains = movement[3] % (quantity + 1)
                    if order["partial"] not in (None, (quantity, remains)):
                        with pytest.raises(ledger.IdempotencyConflict):
                            ledger.refund_remainder(order_id, quantity, remains)
                        continue
                    ledger.refund_remainder(order_id, quantity, remains)
                    if order["partial"]:
                        continue
                    order["partial"] = (quantity, remains)
                    retail_share = pro_rata_refund(
                        order["retail"], quantity, remains, tenant.currency
                    )
                    wholesale_share = pro_rata_refund(wholesale_charged, quantity, remains, "USD")
                retail_back = min(retail_share, order["retail"] - order["retail_back"])
                wholesale_back = min(wholesale_share, wholesale_charged - order["wholesale_back"])
                order["retail_back"] += retail_back
                order["wholesale_back"] += wholesale_back
                move(order["who"], retail_back)
                move(order["tenant"], wholesale_back)
            elif kind == "clawback" and model.topups:
                who, ref, value = model.topups[movement[1] % len(model.topups)]
                ledger.clawback(people[who], value, "stripe", ref, "disputed", cause="refund")
                if ref not in model.clawed:
                    model.clawed.add(ref)
                    move(who, -value)

        report = ledger.verify_ledger()
        assert report.ok, report.as_dict()
        clawed_back = {who for who, ref, _ in model.topups if ref in model.clawed}
        for who, person in people.items():
            assert ledger.balance(ledger.wallet_of(person)) == holds(who)
            assert holds(who) >= 0 or who in clawed_back
        for tenant in (p.acme, p.toko):
            assert ledger.balance(ledger.wholesale_wallet_of(tenant)) == holds(tenant.slug)
            assert holds(tenant.slug) >= 0
        flagged = {f.account for f in report.flagged}
        assert flagged == {ledger.wallet_of(people[who]).key for who in people if holds(who) < 0}
        for order_id in model.orders:
            totals = ledger.order_totals(order_id)
            assert 0 <= totals.retail_refunded <= totals.retail_charged
            assert 0 <= totals.wholesale_refunded <= totals.wholesale_charged
        db.session.rollback()


# --- concurrency on PostgreSQL -------------------------------------------------------------


@pytest.fixture
def postgres_app(make_app, ledger):
    if not TEST_DATABASE_URL:
        service_missing("PASOK_TEST_DATABASE_URL is not set")
    app = make_app(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 25, "max_overflow": 5})
    empty_database(app)
    return app


def test_concurrent_orders_never_overspend_one_wallet(postgres_app, ledger):
    """20 orders at once against a wallet that affords exactly 10, and a tenant wallet that
    affords exactly 5 wholesales."""
    app = postgres_app
    ids = create_panels(Factories(app))
    with app.app_context(), across_tenants():
        p = load_panels(ids)
        ledger.credit_topup(p.alice, D("10.00"), "stripe", "cs_1")
        ledger.topup_tenant(p.acme, D("2.50"), "opening", "test")
        wallet_id = ledger.wallet_of(p.alice).id
        db.session.commit()

    start = threading.Barrier(20)

    def place(order_id: int) -> str:
        with app.app_context(), tenant_scope(ids["acme"]):
            customer = db.session.get(User, ids["alice"])
            tenant = db.session.get(Tenant, ids["acme"])
            start.wait(timeout=30)
            try:
                charged = ledger.charge_order(customer, tenant, order_id, D("1.00"), D("0.50"))
                db.session.commit()
            except ledger.InsufficientFunds:
                db.session.rollback()
                return "refused"
            return "on hold" if charged.wholesale_pending else "charged"

    with watch_balance(app, wallet_id) as seen, ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = Counter(pool.map(place, range(1, 21)))

    assert outcomes == {"charged": 5, "on hold": 5, "refused": 10}
    assert seen and min(seen) >= 0
    with app.app_context(), across_tenants():
        p = load_panels(ids)
        assert ledger.balance(ledger.wallet_of(p.alice)) == 0
        assert ledger.balance(ledger.wholesale_wallet_of(p.acme)) == 0
        assert ledger.verify_ledger().ok


def test_concurrent_first_use_creates_one_wallet(postgres_app, ledger):
    app = postgres_app
    ids = create_panels(Factories(app))
    start = threading.Barrier(10)

    def open_wallet(_: int) -> int:
        with app.app_context(), tenant_scope(ids["acme"]):
            customer = db.session.get(User, ids["alice"])
            start.wait(timeout=30)
            wallet_id = ledger.wallet_of(customer).id
            db.session.commit()
            return wallet_id

    with ThreadPoolExecutor(max_workers=10) as pool:
        assert len(set(pool.map(open_wallet, range(10)))) == 1
    with app.app_context(), across_tenants():
        assert db.session.scalar(select(func.count(ledger.LedgerAccount.id))) == 1


def test_concurrent_refunds_of_one_order_never_exceed_its_charge(postgres_app, ledger):
    app = postgres_app
    ids = create_panels(Factories(app))
    with app.app_context(), across_tenants():
        p = load_panels(ids)
        ledger.credit_topup(p.alice, D("10.00"), "stripe", "cs_1")
        ledger.charge_order(p.alice, p.acme, 1, D("6.00"), D("0"))
        db.session.commit()
    start = threading.Barrier(2)

    def refund(partial: bool) -> None:
        with app.app_context(), tenant_scope(ids["acme"]):
            start.wait(timeout=30)
            if partial:
                ledger.refund_remainder(1, 100, 50)
            else:
                ledger.refund_order(1)
            db.session.commit()

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(refund, [True, False]))
    with app.app_context(), across_tenants():
        totals = ledger.order_totals(1)
        assert totals.retail_refunded == totals.retail_charged == D("6.00")
        assert ledger.balance(ledger.wallet_of(load_panels(ids).alice)) == D("10.00")
        assert ledger.verify_ledger().ok
