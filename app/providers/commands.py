"""`pasok provider …`: upstream providers from the command line."""

from __future__ import annotations

import json
import sys

import click
from flask.cli import AppGroup
from sqlalchemy import func, select

from app.cli_support import operator_command
from app.extensions import db
from app.providers.models import Provider, ProviderService

provider_cli = AppGroup("provider", help="Upstream providers.")


@provider_cli.command("add")
@click.argument("name")
@click.option("--url", "api_url", required=True, help="The provider's API v2 URL.")
@click.option("--key", "api_key", required=True, help="Your API key there (stored encrypted).")
@click.option("--currency", default="USD", show_default=True)
@click.option("--honours-ref", is_flag=True, help="It returns the same order for the same ref.")
@click.option("--timeout", "timeout_seconds", default=15.0, show_default=True, type=float)
@operator_command
def provider_add(name, api_url, api_key, currency, honours_ref, timeout_seconds) -> None:
    """Register an upstream provider."""
    from app.providers.services import add_provider

    provider = add_provider(
        name,
        api_url,
        api_key,
        currency=currency,
        honours_ref=honours_ref,
        timeout_seconds=timeout_seconds,
        actor="cli",
    )
    click.echo(f"Provider {provider.name} added ({provider.api_url}, {provider.currency}).")


@provider_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@operator_command
def provider_list(as_json: bool) -> None:
    """List providers."""
    counts = dict(
        db.session.execute(
            select(ProviderService.provider_id, func.count())
            .where(ProviderService.available.is_(True))
            .group_by(ProviderService.provider_id)
        ).all()
    )
    rows = [
        {
            "name": p.name,
            "api_url": p.api_url,
            "currency": p.currency,
            "enabled": p.enabled,
            "honours_ref": p.honours_ref,
            "services": counts.get(p.id, 0),
            "balance": None if p.last_balance is None else str(p.last_balance),
            "last_synced_at": p.last_synced_at.isoformat() if p.last_synced_at else None,
        }
        for p in db.session.scalars(select(Provider).order_by(Provider.name))
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No providers.")
        return
    click.echo(f"{'NAME':<20} {'CUR':<4} {'ON':<3} {'REF':<4} {'SERVICES':>8}  URL")
    for r in rows:
        click.echo(
            f"{r['name']:<20} {r['currency']:<4} {'yes' if r['enabled'] else 'no':<3} "
            f"{'yes' if r['honours_ref'] else 'no':<4} {r['services']:>8}  {r['api_url']}"
        )


@provider_cli.command("sync")
@click.argument("name")
@click.option("--publish", is_flag=True, help="Publish new services at once (else unlisted).")
@operator_command
def provider_sync(name: str, publish: bool) -> None:
    """Import a provider's services into the catalog, and show what changed."""
    from app.catalog.sync import fetch_services, record_import, sync_provider
    from app.providers.services import get_provider

    provider = get_provider(name)
    click.echo(f"Fetching {provider.name}'s services…", err=True)
    upstream = fetch_services(provider)
    with click.progressbar(length=len(upstream), label="Syncing", file=sys.stderr) as bar:
        report = sync_provider(provider, upstream, publish=publish, progress=bar.update)
    record_import(provider, report, publish=publish, actor="cli")
    click.echo(report.summary())
    for kind in ("added", "repriced", "updated", "removed", "restored"):
        ids = getattr(report, kind)
        if ids:
            shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
            click.echo(f"  {kind}: {shown}")


@provider_cli.command("balance")
@click.argument("name")
@operator_command
def provider_balance(name: str) -> None:
    """Ask a provider for your balance there."""
    from app.money import format_amount
    from app.providers.services import check_balance, get_provider

    provider = get_provider(name)
    balance = check_balance(provider)
    click.echo(
        f"{provider.name}: {format_amount(balance.amount, balance.currency)} {balance.currency}"
    )
