"""`pasok ledger verify`, `pasok customer credit` and `pasok tenant topup`.

`ledger_cli` is a group of its own; the two other commands are attached to the existing
`customer` and `tenant` groups by `app.cli.register_commands`.
"""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup, with_appcontext

from app.cli_support import operator_command

ledger_cli = AppGroup("ledger", help="The double-entry ledger.")


@ledger_cli.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@operator_command
def ledger_verify_command(as_json: bool) -> None:
    """Recompute every balance from its postings; exit non-zero on any drift or imbalance."""
    from app.ledger.verify import show, verify_ledger

    report = verify_ledger()
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(
            f"Ledger: {report.accounts} accounts, {report.entries} entries, "
            f"{report.postings} postings."
        )
        for d in report.drift:
            click.echo(
                f"DRIFT {d.account}: cached {show(d.cached, d.currency)}, "
                f"postings say {show(d.computed, d.currency)} {d.currency}"
            )
        for u in report.unbalanced:
            click.echo(
                f"UNBALANCED entry {u.entry_id} ({u.key}): {u.currency} postings sum to "
                f"{show(u.total, u.currency)}"
            )
        for m in report.mismatched:
            click.echo(f"MISMATCH posting {m.posting_id} on {m.account}: {m.problem}")
        for t in report.topups:
            click.echo(
                f"TOPUP {t.topup_id} ({t.state}) should have credited "
                f"{show(t.expected, t.currency)} {t.currency}, its entries credited "
                f"{show(t.credited, t.currency)}"
            )
        for f in report.flagged:
            click.echo(
                f"FLAGGED {f.account} is below zero: {show(f.balance, f.currency)} {f.currency}"
            )
        if report.ok:
            click.echo("OK: every balance matches its postings and every entry sums to zero.")
    if not report.ok:
        click.echo(
            f"Ledger verification failed: {len(report.drift)} drifting accounts, "
            f"{len(report.unbalanced)} unbalanced entries, "
            f"{len(report.mismatched)} mismatched postings, "
            f"{len(report.topups)} top-ups not matching their entries.",
            err=True,
        )
        raise click.exceptions.Exit(1)


@click.command("credit")
@click.option("--tenant", "slug", required=True, help="The tenant's slug.")
@click.option("--email", required=True, help="The customer's email.")
@click.option(
    "--amount",
    required=True,
    help="A plain decimal in the panel's currency (25.50); negative (--amount=-5) to debit.",
)
@click.option("--reason", required=True, help="Kept with the entry and in the audit log.")
@with_appcontext
@operator_command
def customer_credit_command(slug: str, email: str, amount: str, reason: str) -> None:
    """Credit (or debit) a customer's wallet by hand."""
    from sqlalchemy import select

    from app.accounts.models import CUSTOMER, User
    from app.accounts.services import normalize_email
    from app.errors import NotFound
    from app.extensions import db
    from app.ledger.services import adjust_customer, balance, wallet_of
    from app.money import format_amount, parse_amount
    from tenants.provisioning import get_tenant_by_slug

    tenant = get_tenant_by_slug(slug)
    value = parse_amount(amount, tenant.currency, allow_negative=True)
    address = normalize_email(email)
    customer = db.session.scalar(
        select(User).where(
            User.tenant_id == tenant.id, User.kind == CUSTOMER, User.email == address
        )
    )
    if customer is None:
        raise NotFound(f"No customer {address} on {tenant.slug}")
    adjust_customer(customer, value, reason, actor="cli")
    now = balance(wallet_of(customer))
    verb = "Credited" if value > 0 else "Debited"
    click.echo(
        f"{verb} {format_amount(abs(value), tenant.currency)} {tenant.currency} "
        f"{'to' if value > 0 else 'from'} {customer.email} on {tenant.slug}; "
        f"balance {format_amount(now, tenant.currency)} {tenant.currency}."
    )


@click.command("topup")
@click.argument("slug")
@click.option(
    "--amount",
    required=True,
    help="A plain decimal in the platform currency; negative (--amount=-5) to correct.",
)
@click.option("--reason", required=True, help="Kept with the entry and in the audit log.")
@with_appcontext
@operator_command
def tenant_topup_command(slug: str, amount: str, reason: str) -> None:
    """Credit (or correct) a tenant's wholesale wallet by hand; on-hold orders the new balance
    pays for resume in the same transaction."""
    from app.ledger.services import balance, platform_currency, topup_tenant, wholesale_wallet_of
    from app.money import format_amount, parse_amount
    from app.orders.services import resume_on_hold_orders
    from tenants.provisioning import get_tenant_by_slug

    tenant = get_tenant_by_slug(slug)
    currency = platform_currency()
    value = parse_amount(amount, currency, allow_negative=True)
    topup_tenant(tenant, value, reason, actor="cli")
    resumed = resume_on_hold_orders(tenant.id, actor="cli") if value > 0 else []
    now = balance(wholesale_wallet_of(tenant))
    click.echo(
        f"{'Topped up' if value > 0 else 'Debited'} {tenant.slug}'s wholesale wallet by "
        f"{format_amount(abs(value), currency)} {currency}; "
        f"balance {format_amount(now, currency)} {currency}."
    )
    if resumed:
        click.echo(f"Resumed {len(resumed)} on-hold order(s).")
