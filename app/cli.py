"""The `pasok` command: one Flask CLI group for operators and scripts.

Bad input prints one readable line on stderr and exits non-zero; never a traceback.
"""

from __future__ import annotations

import json

import click
from flask import Flask, current_app
from flask.cli import AppGroup, FlaskGroup, with_appcontext
from sqlalchemy import select

from app.accounts.models import CUSTOMER, OPERATOR, User
from app.cli_support import operator_command
from app.extensions import db
from app.panels.models import Tenant
from tenants.context import tenant_scope

operator_cli = AppGroup("operator", help="Platform operators.")
tenant_cli = AppGroup("tenant", help="Tenants (reseller panels).")
customer_cli = AppGroup("customer", help="A tenant's customers.")
domain_cli = AppGroup("domain", help="Custom domains.")
orders_cli = AppGroup("orders", help="The order pipeline.")
apikey_cli = AppGroup("apikey", help="Customers' API keys.")


@operator_cli.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True)
@operator_command
def operator_create(email: str, password: str) -> None:
    """Create a platform operator."""
    from app.accounts.services import create_user

    user = create_user(kind=OPERATOR, tenant_id=None, email=email, password=password)
    click.echo(f"Operator {user.email} created.")


@tenant_cli.command("create")
@click.argument("slug")
@click.option("--name", required=True)
@click.option("--owner-email", required=True)
@click.option("--owner-password", required=True)
@click.option("--theme", default="base", show_default=True)
@click.option("--currency", default="USD", show_default=True)
@click.option("--locale", default=None, help="en or id (default: id for IDR panels, else en)")
@operator_command
def tenant_create(slug, name, owner_email, owner_password, theme, currency, locale) -> None:
    """Create a tenant and its owner."""
    from tenants.provisioning import create_tenant

    tenant = create_tenant(
        slug=slug,
        name=name,
        owner_email=owner_email,
        owner_password=owner_password,
        theme=theme,
        currency=currency,
        locale=locale,
        actor="cli",
    )
    domain = current_app.config["PASOK_PLATFORM_DOMAIN"]
    click.echo(f"Tenant {tenant.slug} created: http://{tenant.slug}.{domain}/")


@tenant_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@operator_command
def tenant_list(as_json: bool) -> None:
    """List tenants."""
    tenants = db.session.scalars(select(Tenant).order_by(Tenant.slug)).all()
    rows = [
        {
            "slug": t.slug,
            "name": t.name,
            "status": t.status,
            "theme": t.theme,
            "currency": t.currency,
            "locale": t.default_locale,
            "timezone": t.timezone,
            "created_at": t.created_at.isoformat(),
        }
        for t in tenants
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No tenants.")
        return
    click.echo(f"{'SLUG':<20} {'STATUS':<10} {'CUR':<4} {'LOC':<4} {'THEME':<12} NAME")
    for r in rows:
        click.echo(
            f"{r['slug']:<20} {r['status']:<10} {r['currency']:<4} {r['locale']:<4} "
            f"{r['theme']:<12} {r['name']}"
        )


@tenant_cli.command("suspend")
@click.argument("slug")
@click.option("--reason", default="", help="Shown to operators; kept in the audit log.")
@operator_command
def tenant_suspend(slug: str, reason: str) -> None:
    """Suspend a tenant's panel."""
    from tenants.provisioning import get_tenant_by_slug, suspend_tenant

    tenant = get_tenant_by_slug(slug)
    suspend_tenant(tenant, reason=reason, actor="cli")
    click.echo(f"Tenant {tenant.slug} suspended.")


@tenant_cli.command("resume")
@click.argument("slug")
@operator_command
def tenant_resume(slug: str) -> None:
    """Resume a suspended tenant."""
    from tenants.provisioning import get_tenant_by_slug, resume_tenant

    tenant = get_tenant_by_slug(slug)
    resume_tenant(tenant, actor="cli")
    click.echo(f"Tenant {tenant.slug} resumed.")


@customer_cli.command("create")
@click.option("--tenant", "slug", required=True)
@click.option("--email", required=True)
@click.option("--password", required=True)
@operator_command
def customer_create(slug: str, email: str, password: str) -> None:
    """Create a customer on a tenant's panel."""
    from app.accounts.services import create_user
    from tenants.provisioning import get_tenant_by_slug

    tenant = get_tenant_by_slug(slug)
    with tenant_scope(tenant.id):
        user = create_user(kind=CUSTOMER, tenant_id=tenant.id, email=email, password=password)
        db.session.flush()
    click.echo(f"Customer {user.email} created on {tenant.slug}.")


@domain_cli.command("add")
@click.argument("slug")
@click.argument("hostname")
@click.option("--verified", is_flag=True, help="Route it now, without the DNS check.")
@operator_command
def domain_add(slug: str, hostname: str, verified: bool) -> None:
    """Add a custom domain to a tenant."""
    from tenants.provisioning import add_domain, get_tenant_by_slug

    tenant = get_tenant_by_slug(slug)
    domain = add_domain(
        tenant,
        hostname,
        verified=verified,
        platform_domain=current_app.config["PASOK_PLATFORM_DOMAIN"],
        actor="cli",
    )
    state = (
        "routes now"
        if domain.verified
        else f"awaits the DNS TXT record {domain.verification_token}"
    )
    click.echo(f"Domain {domain.hostname} added to {tenant.slug}; it {state}.")


@apikey_cli.command("create")
@click.option("--tenant", "slug", required=True)
@click.option("--email", required=True)
@click.option("--label", default="", help="A name to tell the key apart (shown on /api).")
@operator_command
def apikey_create(slug: str, email: str, label: str) -> None:
    """Create an API key for a customer; prints the key alone (it is shown only this once)."""
    from app.accounts.services import normalize_email
    from app.api.keys import create_key
    from app.errors import NotFound
    from tenants.provisioning import get_tenant_by_slug

    tenant = get_tenant_by_slug(slug)
    address = normalize_email(email)
    with tenant_scope(tenant.id):
        customer = db.session.scalar(
            select(User).where(
                User.tenant_id == tenant.id, User.kind == CUSTOMER, User.email == address
            )
        )
        if customer is None:
            raise NotFound(f"No customer {address} on {tenant.slug}")
        new = create_key(tenant.id, customer.id, label, actor="cli")
    click.echo(new.token)


@orders_cli.command("sweep")
@operator_command
def orders_sweep() -> None:
    """Re-enqueue due pending/unknown orders and refill/cancel requests; move stuck
    submissions to unknown and stuck requests to error."""
    from app.orders.forwarding import sweep_orders
    from app.orders.upstream_requests import sweep_requests

    report, requests = sweep_orders(), sweep_requests()
    click.echo(
        f"Swept: {report.summary()}; requests: {requests.enqueued} enqueued, {requests.lost} lost."
    )
    if report.errors or requests.errors:
        raise click.ClickException("; ".join(report.errors + requests.errors))


@orders_cli.command("sync")
@click.option("--provider", "provider_name", default=None, help="Only this provider's orders.")
@operator_command
def orders_sync(provider_name: str | None) -> None:
    """Ask providers about due orders and refills now, in this process, and apply their
    answers."""
    from app.orders.status_sync import sync_statuses
    from app.orders.upstream_requests import sync_refills
    from app.providers.services import get_provider

    provider_id = get_provider(provider_name).id if provider_name else None
    report, refills = sync_statuses(provider_id), sync_refills(provider_id)
    click.echo(
        f"Synced: {report.summary()}; refills: {refills.refills} asked in {refills.calls} "
        f"calls, {refills.completed} completed, {refills.rejected} rejected."
    )
    if report.errors or refills.errors:
        raise click.ClickException("; ".join(report.errors + refills.errors))


@click.command("rotate-secrets")
@with_appcontext
@operator_command
def rotate_secrets_command() -> None:
    """Re-encrypt stored secrets with the first key of PASOK_SECRET_KEYS."""
    from app.crypto import rotate_all_secrets

    count = rotate_all_secrets(db.metadata)
    click.echo(f"{count} secrets re-encrypted with the newest key.")


@click.command("seed-demo")
@with_appcontext
@operator_command
def seed_demo_command() -> None:
    """Add the demo platform, tenants and customers (idempotent)."""
    from app.demo import seed_demo

    for line in seed_demo():
        click.echo(line)


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
def demo_command(host: str, port: int) -> None:
    """Migrate, seed if empty, and serve the whole demo (what `make run` runs)."""
    from app.demo import run_demo

    run_demo(host, port)


def register_commands(app: Flask) -> None:
    from app.ledger.commands import customer_credit_command, ledger_cli, tenant_topup_command
    from app.money.commands import fx_cli
    from app.payments.commands import gateway_cli
    from app.providers.commands import provider_cli
    from workers.commands import cron_command, worker_command

    customer_cli.add_command(customer_credit_command)
    tenant_cli.add_command(tenant_topup_command)
    groups = (
        operator_cli, tenant_cli, customer_cli, domain_cli, provider_cli, fx_cli, ledger_cli,
        orders_cli, apikey_cli, gateway_cli,
    )  # fmt: skip
    for group in groups:
        app.cli.add_command(group)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(rotate_secrets_command)
    app.cli.add_command(demo_command)
    app.cli.add_command(worker_command)
    app.cli.add_command(cron_command)


def _create_app():
    from app import create_app

    return create_app()


cli = FlaskGroup(name="pasok", create_app=_create_app, add_version_option=False, help="Pasok.")


def _register_standalone_commands() -> None:
    """Commands that run without Pasok's app (FlaskGroup finds them before loading it)."""
    from app.gatewaysim.cli import gateway_simulator_command
    from app.sandbox.cli import sandbox_provider_command

    cli.add_command(sandbox_provider_command)
    cli.add_command(gateway_simulator_command)


_register_standalone_commands()


def main() -> None:
    cli.main(prog_name="pasok")


if __name__ == "__main__":
    main()
