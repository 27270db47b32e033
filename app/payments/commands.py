"""`pasok gateway …`: a panel's (or the platform's) gateway settings, and the reconciliation."""

from __future__ import annotations

import json
from datetime import timedelta

import click
from flask.cli import AppGroup

from app.cli_support import operator_command
from app.payments import settings
from app.payments.models import MANUAL, MIDTRANS, STRIPE

gateway_cli = AppGroup("gateway", help="Payment gateways (no --tenant: the platform's own).")


def _tenant_id(slug: str | None) -> int | None:
    from tenants.provisioning import get_tenant_by_slug

    return None if slug is None else get_tenant_by_slug(slug).id


@gateway_cli.group("set")
@click.option("--tenant", "slug", default=None, help="The panel; none: the platform's gateways.")
@click.pass_context
def gateway_set(ctx: click.Context, slug: str | None) -> None:
    """Replace one gateway's settings."""
    ctx.obj = {"slug": slug}


@gateway_set.command("stripe")
@click.option("--secret-key", required=True)
@click.option("--webhook-secret", required=True)
@click.option("--api-base", default=None, help="Send the SDK's calls here (the simulator).")
@click.pass_context
@operator_command
def set_stripe(ctx, secret_key: str, webhook_secret: str, api_base: str | None) -> None:
    """Stripe: the secret key and the webhook endpoint's signing secret."""
    slug = ctx.obj["slug"]
    account = settings.set_stripe(
        _tenant_id(slug),
        secret_key=secret_key,
        webhook_secret=webhook_secret,
        api_base=api_base,
        actor="cli",
    )
    click.echo(f"Stripe set for {slug or 'the platform'}: {settings.masked(account.secret_key)}")


@gateway_set.command("midtrans")
@click.option("--server-key", required=True)
@click.option("--client-key", required=True)
@click.option("--production", is_flag=True, help="Production keys (default: sandbox).")
@click.option("--api-base", default=None, help="Send the SDK's calls here (the simulator).")
@click.pass_context
@operator_command
def set_midtrans(ctx, server_key: str, client_key: str, production: bool, api_base) -> None:
    """Midtrans: the server and client keys, sandbox or production."""
    slug = ctx.obj["slug"]
    account = settings.set_midtrans(
        _tenant_id(slug),
        server_key=server_key,
        client_key=client_key,
        production=production,
        api_base=api_base,
        actor="cli",
    )
    mode = "production" if account.production else "sandbox"
    click.echo(
        f"Midtrans ({mode}) set for {slug or 'the platform'}: {settings.masked(account.secret_key)}"
    )


@gateway_set.command("manual")
@click.option("--instructions", default="")
@click.option("--bank-accounts", default="", help="One account per line.")
@click.pass_context
@operator_command
def set_manual(ctx, instructions: str, bank_accounts: str) -> None:
    """Manual bank transfer, approved by staff."""
    slug = ctx.obj["slug"]
    settings.set_manual(
        _tenant_id(slug), instructions=instructions, bank_accounts=bank_accounts, actor="cli"
    )
    click.echo(f"Manual transfer set for {slug or 'the platform'}.")


@gateway_cli.command("list")
@click.option("--tenant", "slug", default=None, help="The panel; none: the platform's gateways.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@operator_command
def gateway_list(slug: str | None, as_json: bool) -> None:
    """The gateways set up, secrets masked."""
    accounts = settings.gateway_accounts(_tenant_id(slug))
    rows = [
        {
            "gateway": gateway,
            "enabled": account.enabled,
            "key": settings.masked(account.secret_key),
            "client_key": account.client_key,
            "production": account.production if gateway == MIDTRANS else None,
            "api_base": account.api_base,
        }
        for gateway, account in sorted(accounts.items())
        if gateway in (STRIPE, MIDTRANS, MANUAL)
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No gateways set up.")
    for row in rows:
        state = "enabled" if row["enabled"] else "disabled"
        key = row["key"] or "-"
        click.echo(f"{row['gateway']:<9} {state:<9} {key:<10} {row['api_base'] or ''}")


@gateway_cli.command("reconcile")
@click.option("--older-than", default=15, show_default=True, type=click.IntRange(0, 10_000),
              help="Minutes a top-up has been pending.")  # fmt: skip
@operator_command
def gateway_reconcile(older_than: int) -> None:
    """Re-read top-ups pending too long from their gateway; settle or expire them."""
    from app.payments.reconcile import reconcile_topups

    outcomes = reconcile_topups(older_than=timedelta(minutes=older_than))
    if not outcomes:
        click.echo("No top-up was due.")
    for outcome, count in sorted(outcomes.items()):
        click.echo(f"{count:>5}  {outcome}")
