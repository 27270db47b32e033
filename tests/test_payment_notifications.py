"""Payment emails: staff hear of a reported bank transfer (at most once per panel every ten
minutes), customers hear of its review and get a receipt for a gateway payment, owners hear
of a wallet a reversed payment took below zero (at most once per customer a day). Each goes
out only after its transaction commits, in its reader's language, and a mail problem never
fails the payment."""

from __future__ import annotations

import email
import logging
import socket
from decimal import Decimal
from email.policy import default as default_policy
from pathlib import Path

import pytest
from sqlalchemy import update

from app.accounts.models import User
from app.extensions import db, get_redis
from app.ledger import adjust_customer
from app.ledger.history import customer_balance
from app.panels.models import Tenant
from app.payments import notifications
from app.payments.models import PAID, PENDING, STRIPE, Topup
from app.payments.services import (
    approve_manual_topup,
    lock_topup,
    reject_manual_topup,
    settle_dispute,
    settle_paid,
    settle_refund,
    submit_manual_topup,
)
from app.payments.settings import set_manual
from tenants.context import across_tenants, tenant_scope

D = Decimal
OWNER = "owner@acme.example.com"
ADMIN = "admin@acme.example.com"
SUPPORT = "support@acme.example.com"
RETIRED = "retired@acme.example.com"
ALICE = "alice@example.com"
BUDI = "budi@example.com"
NUSA_OWNER = "owner@nusa.example.com"


@pytest.fixture
def mail_dir(app, tmp_path) -> Path:
    """This test's own mail folder (the session's is shared by every test)."""
    app.config["PASOK_MAIL_DIR"] = str(tmp_path)
    return tmp_path


@pytest.fixture
def shops(app, make, mail_dir):
    """acme (USD, English): its owner, an admin, a support agent, a disabled admin, and alice;
    nusa (IDR, Bahasa Indonesia): its owner and budi. Both take manual transfers."""
    ids = {"acme": make.tenant("acme"), "nusa": make.tenant("nusa", currency="IDR")}
    ids["alice"] = make.customer(ids["acme"], ALICE)
    ids["budi"] = make.customer(ids["nusa"], BUDI)
    ids["admin"] = make.staff(ids["acme"], ADMIN, role="admin")
    make.staff(ids["acme"], SUPPORT, role="support")
    retired = make.staff(ids["acme"], RETIRED, role="admin")
    with app.app_context(), across_tenants():
        db.session.execute(update(User).where(User.id == retired).values(is_enabled=False))
        db.session.commit()
    for tenant in ("acme", "nusa"):
        with app.app_context(), tenant_scope(ids[tenant]):
            set_manual(ids[tenant], instructions="BCA", bank_accounts="BCA 123", actor="t")
            db.session.commit()
    return ids


def mails(mail_dir: Path, to: str | None = None) -> list[email.message.EmailMessage]:
    """The emails sent so far (to `to`, if given), oldest first."""
    paths = sorted(mail_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    found = [email.message_from_bytes(p.read_bytes(), policy=default_policy) for p in paths]
    return [m for m in found if to is None or m["To"] == to]


def body_of(message) -> str:
    return message.get_content()


def recipients(mail_dir: Path) -> list[str]:
    return sorted(m["To"] for m in mails(mail_dir))


def report_transfer(app, customer_id: int, amount: str, reference: str = "TRX-42") -> int:
    with app.app_context(), across_tenants():
        tenant_id = db.session.get(User, customer_id).tenant_id
    with app.app_context(), tenant_scope(tenant_id):
        customer = db.session.get(User, customer_id)
        return submit_manual_topup(customer, D(amount), reference, None).id


def staff_of(tenant_id: int, email_address: str) -> User:
    return db.session.query(User).filter_by(tenant_id=tenant_id, email=email_address).one()


def approve(app, tenant_id: int, topup_id: int, amount: str | None = None):
    with app.app_context(), tenant_scope(tenant_id):
        owner = db.session.get(Tenant, tenant_id)
        actor = staff_of(tenant_id, f"owner@{owner.slug}.example.com")
        topup, credited = approve_manual_topup(
            topup_id, actor=actor, amount=None if amount is None else D(amount)
        )
        return topup.state, credited


def gateway_payment(app, tenant_id: int, customer_id: int, amount: str) -> int:
    """A Stripe top-up the gateway has reported paid, credited and committed."""
    with app.app_context(), tenant_scope(tenant_id):
        currency = db.session.get(Tenant, tenant_id).currency
        topup = Topup(
            tenant_id=tenant_id,
            customer_id=customer_id,
            gateway=STRIPE,
            amount=D(amount),
            currency=currency,
            state=PENDING,
        )
        db.session.add(topup)
        db.session.flush()
        topup.external_id = f"cs_test_{topup.id}"
        db.session.commit()
        outcome = settle_paid(
            lock_topup(topup.id), D(amount), currency, payment_ref=f"pi_{topup.id}", method="card"
        )
        assert outcome == "credited"
        db.session.commit()
        return topup.id


def spend(app, tenant_id: int, customer_id: int, amount: str) -> None:
    with app.app_context(), tenant_scope(tenant_id):
        adjust_customer(db.session.get(User, customer_id), -D(amount), "spent", "test")
        db.session.commit()


def balance_of(app, customer_id: int) -> Decimal:
    with app.app_context(), across_tenants():
        customer = db.session.get(User, customer_id)
        return customer_balance(db.session.get(Tenant, customer.tenant_id), customer)


def throttled(app, key: str) -> int:
    """The throttle's seconds left (-2 when there is none)."""
    with app.app_context():
        return get_redis().ttl(key)


# --- a reported bank transfer → staff ---------------------------------------------------------


def test_a_reported_transfer_emails_the_panels_active_owners_and_admins(shops, app, mail_dir):
    topup_id = report_transfer(app, shops["alice"], "25.00")
    assert recipients(mail_dir) == [ADMIN, OWNER]
    message = mails(mail_dir, OWNER)[0]
    assert message["Subject"] == "Acme Panel: 1 bank transfer is waiting for review"
    body = body_of(message)
    assert "alice@example.com reports a bank transfer of USD 25.00." in body
    assert "Reference: TRX-42" in body
    assert f"http://acme.localhost/admin/topups/{topup_id}\n" in body
    assert "1 bank transfer is waiting for review in all:" in body
    assert body.rstrip().endswith("-- \nAcme Panel")


def test_a_burst_of_transfers_is_one_email_per_panel_every_ten_minutes(shops, app, mail_dir):
    for amount in ("10", "20", "30"):
        report_transfer(app, shops["alice"], amount)
    assert recipients(mail_dir) == [ADMIN, OWNER]
    key = notifications.new_transfer_throttle_key(shops["acme"])
    assert 0 < throttled(app, key) <= 600
    with app.app_context():
        get_redis().delete(key)  # ten minutes later
    report_transfer(app, shops["alice"], "40")
    latest = mails(mail_dir, OWNER)[-1]
    assert len(mails(mail_dir, OWNER)) == 2
    assert latest["Subject"] == "Acme Panel: 4 bank transfers are waiting for review"
    assert "4 bank transfers are waiting for review in all:" in body_of(latest)


def test_each_panel_has_its_own_transfer_throttle(shops, app, mail_dir):
    report_transfer(app, shops["alice"], "25")
    report_transfer(app, shops["budi"], "50000")
    assert recipients(mail_dir) == [ADMIN, OWNER, NUSA_OWNER]


def test_staff_of_an_indonesian_panel_read_it_in_indonesian(shops, app, make, mail_dir):
    boss = make.staff(shops["nusa"], "boss@nusa.example.com", role="admin")
    with app.app_context(), across_tenants():
        db.session.get(User, boss).locale = "en"  # their own choice wins over the panel's
        db.session.commit()
    report_transfer(app, shops["budi"], "50000", reference="BCA 0099")
    indonesian = mails(mail_dir, NUSA_OWNER)[0]
    assert indonesian["Subject"] == "Nusa Panel: 1 transfer bank menunggu diperiksa"
    assert "budi@example.com melaporkan transfer bank sebesar IDR 50000." in body_of(indonesian)
    assert "Referensi: BCA 0099" in body_of(indonesian)
    english = mails(mail_dir, "boss@nusa.example.com")[0]
    assert english["Subject"] == "Nusa Panel: 1 bank transfer is waiting for review"


# --- the review → the customer ----------------------------------------------------------------


def test_an_approval_tells_the_customer_the_amount_credited_and_the_balance(shops, app, mail_dir):
    topup_id = report_transfer(app, shops["alice"], "25.00")
    assert approve(app, shops["acme"], topup_id, "20.50") == (PAID, True)
    [message] = mails(mail_dir, ALICE)
    assert message["Subject"] == "Acme Panel: your bank transfer of USD 20.50 is approved"
    body = body_of(message)
    assert "added USD 20.50 to your balance on Acme Panel" in body
    assert "You reported USD 25.00; USD 20.50 is what reached the account" in body
    assert "Your balance now: USD 20.50" in body
    assert "http://acme.localhost/funds" in body
    assert recipients(mail_dir).count(OWNER) == 1  # only the report; staff hear nothing more


def test_approving_twice_emails_the_customer_once(shops, app, mail_dir):
    topup_id = report_transfer(app, shops["alice"], "25.00")
    approve(app, shops["acme"], topup_id)
    assert approve(app, shops["acme"], topup_id) == (PAID, False)
    [message] = mails(mail_dir, ALICE)
    assert "You reported" not in body_of(message)


def test_a_rejection_tells_the_customer_the_reason(shops, app, mail_dir):
    topup_id = report_transfer(app, shops["alice"], "25.00")
    with app.app_context(), tenant_scope(shops["acme"]):
        reject_manual_topup(
            topup_id, actor=staff_of(shops["acme"], ADMIN), reason="Nothing arrived from TRX-42"
        )
    [message] = mails(mail_dir, ALICE)
    assert message["Subject"] == "Acme Panel: your bank transfer was not approved"
    body = body_of(message)
    assert "Your bank transfer of USD 25.00 (reference TRX-42)" in body
    assert "Reason: Nothing arrived from TRX-42" in body
    assert balance_of(app, shops["alice"]) == 0


def test_the_customer_of_an_indonesian_panel_reads_the_review_in_indonesian(shops, app, mail_dir):
    topup_id = report_transfer(app, shops["budi"], "50000")
    approve(app, shops["nusa"], topup_id)
    [message] = mails(mail_dir, BUDI)
    assert message["Subject"] == "Nusa Panel: transfer bank Anda sebesar IDR 50000 disetujui"
    assert "Saldo Anda sekarang: IDR 50000" in body_of(message)
    assert body_of(message).rstrip().endswith("-- \nNusa Panel")


def test_a_customers_own_language_wins_over_the_panels(shops, app, mail_dir):
    with app.app_context(), across_tenants():
        db.session.get(User, shops["alice"]).locale = "id"
        db.session.commit()
    topup_id = report_transfer(app, shops["alice"], "25.00")
    with app.app_context(), tenant_scope(shops["acme"]):
        reject_manual_topup(topup_id, actor=staff_of(shops["acme"], OWNER), reason="Salah")
    [message] = mails(mail_dir, ALICE)
    assert message["Subject"] == "Acme Panel: transfer bank Anda tidak disetujui"
    assert "Alasan: Salah" in body_of(message)


# --- a gateway payment → a receipt ------------------------------------------------------------


def test_a_gateway_payment_sends_the_customer_a_receipt_once(shops, app, mail_dir):
    topup_id = gateway_payment(app, shops["acme"], shops["alice"], "20.00")
    with app.app_context(), tenant_scope(shops["acme"]):
        # The same payment reported again credits nothing and tells nobody again.
        again = settle_paid(lock_topup(topup_id), D("20"), "usd", payment_ref="x", method="c")
        assert again == "already settled"
        db.session.commit()
    assert recipients(mail_dir) == [ALICE]
    [message] = mails(mail_dir, ALICE)
    assert message["Subject"] == "Payment received: +USD 20.00"
    body = body_of(message)
    assert "your payment of USD 20.00 through Stripe" in body
    assert f"Top-up: #{topup_id}" in body
    assert "Your balance now: USD 20.00" in body


def test_an_indonesian_receipt(shops, app, mail_dir):
    gateway_payment(app, shops["nusa"], shops["budi"], "75000")
    [message] = mails(mail_dir, BUDI)
    assert message["Subject"] == "Pembayaran diterima: +IDR 75000"
    assert "Saldo Anda sekarang: IDR 75000" in body_of(message)


def test_a_wholesale_payment_sends_no_customer_receipt(shops, app, mail_dir):
    with app.app_context(), tenant_scope(shops["acme"]):
        topup = Topup(tenant_id=shops["acme"], gateway=STRIPE, amount=D(10), currency="USD")
        db.session.add(topup)
        db.session.flush()
        topup.external_id = f"cs_wholesale_{topup.id}"
        settle_paid(topup, D(10), "usd", payment_ref="pi_w", method="card")
        db.session.commit()
        assert topup.state == PAID
    assert mails(mail_dir) == []


# --- a reversed payment below zero → the owners -----------------------------------------------


def test_a_refund_below_zero_warns_the_owners_once_a_day(shops, app, mail_dir):
    first = gateway_payment(app, shops["acme"], shops["alice"], "20.00")
    second = gateway_payment(app, shops["acme"], shops["alice"], "5.00")
    spend(app, shops["acme"], shops["alice"], "22")
    with app.app_context(), tenant_scope(shops["acme"]):
        settle_refund(lock_topup(first), D("20"), cause="refund-1")
        db.session.commit()
        settle_refund(lock_topup(second), D("5"), cause="refund-2")
        db.session.commit()
    assert balance_of(app, shops["alice"]) == D("-22")
    [message] = mails(mail_dir, OWNER)
    assert mails(mail_dir, ADMIN) == []  # owners only
    assert message["Subject"] == "Acme Panel: alice@example.com's balance is below zero"
    body = body_of(message)
    assert "Stripe refunded USD 20.00 of a payment of USD 20.00 by alice@example.com" in body
    assert f"(top-up #{first})" in body
    assert "Balance now: USD -17.00" in body
    assert f"http://acme.localhost/admin/customers/{shops['alice']}" in body
    key = notifications.negative_balance_throttle_key(shops["alice"])
    assert 86000 < throttled(app, key) <= 86400


def test_a_refund_that_leaves_money_in_the_wallet_warns_nobody(shops, app, mail_dir):
    topup_id = gateway_payment(app, shops["acme"], shops["alice"], "20.00")
    with app.app_context(), tenant_scope(shops["acme"]):
        settle_refund(lock_topup(topup_id), D("15"), cause="refund-1")
        db.session.commit()
    assert balance_of(app, shops["alice"]) == D("5")
    assert mails(mail_dir, OWNER) == []


def test_a_lost_dispute_below_zero_says_it_was_a_dispute(shops, app, mail_dir):
    topup_id = gateway_payment(app, shops["nusa"], shops["budi"], "75000")
    spend(app, shops["nusa"], shops["budi"], "50000")
    with app.app_context(), tenant_scope(shops["nusa"]):
        settle_dispute(lock_topup(topup_id), "dp_1", D("75000"), funds_lost=True)
        db.session.commit()
    [message] = mails(mail_dir, NUSA_OWNER)
    assert message["Subject"] == "Nusa Panel: saldo budi@example.com di bawah nol"
    body = body_of(message)
    assert "budi@example.com mengajukan sengketa atas pembayaran IDR 75000" in body
    assert "di Stripe, dan dananya ditarik kembali: IDR 75000." in body
    assert "Saldo sekarang: IDR -50000" in body


# --- only what commits, and never at the payment's expense ------------------------------------


def test_nothing_is_sent_when_the_transaction_rolls_back(shops, app, mail_dir):
    paid = gateway_payment(app, shops["acme"], shops["alice"], "20.00")
    spend(app, shops["acme"], shops["alice"], "20")
    before = len(mails(mail_dir))
    with app.app_context(), tenant_scope(shops["acme"]):
        pending = Topup(
            tenant_id=shops["acme"],
            customer_id=shops["alice"],
            gateway=STRIPE,
            amount=D(5),
            currency="USD",
            external_id="cs_rolled_back",
        )
        db.session.add(pending)
        db.session.commit()
        settle_paid(lock_topup(pending.id), D(5), "usd", payment_ref="pi_r", method="card")
        settle_refund(lock_topup(paid), D("20"), cause="refund-1")
        db.session.rollback()
        db.session.commit()  # a later, empty commit sends nothing left over either
    assert len(mails(mail_dir)) == before
    assert throttled(app, notifications.negative_balance_throttle_key(shops["alice"])) == -2


def test_nothing_is_sent_for_a_payment_whose_savepoint_rolled_back(shops, app, mail_dir):
    with app.app_context(), tenant_scope(shops["acme"]):
        topup = Topup(
            tenant_id=shops["acme"],
            customer_id=shops["alice"],
            gateway=STRIPE,
            amount=D(5),
            currency="USD",
            external_id="cs_savepoint",
        )
        db.session.add(topup)
        db.session.commit()
        savepoint = db.session.begin_nested()
        settle_paid(lock_topup(topup.id), D(5), "usd", payment_ref="pi_s", method="card")
        savepoint.rollback()
        db.session.commit()
        assert db.session.get(Topup, topup.id).state == PENDING
    assert mails(mail_dir) == []


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_mail_failure_does_not_fail_the_approval(shops, make_app, caplog):
    broken = make_app(PASOK_MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=closed_port())
    caplog.set_level(logging.ERROR, logger=notifications.__name__)
    topup_id = report_transfer(broken, shops["alice"], "25.00")
    # Nobody was told of the transfer, so the next one tries again.
    key = notifications.new_transfer_throttle_key(shops["acme"])
    assert throttled(broken, key) == -2
    assert approve(broken, shops["acme"], topup_id) == (PAID, True)
    assert balance_of(broken, shops["alice"]) == D("25")
    failures = [r.getMessage() for r in caplog.records]
    assert f"review of top-up {topup_id} to {ALICE} not sent" in failures
    assert f"new-transfer email of top-up {topup_id} to {OWNER} not sent" in failures
