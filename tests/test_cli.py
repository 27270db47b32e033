"""The `pasok` command: what operators type, and one readable line for bad input."""

import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.accounts.models import User
from app.extensions import db
from app.panels.models import Domain, Tenant
from tenants.context import across_tenants


@pytest.fixture
def pasok(app):
    runner = app.test_cli_runner()

    def invoke(*args):
        return runner.invoke(args=list(args))

    return invoke


def tenant_args(slug="acme", **extra):
    args = [
        "tenant",
        "create",
        slug,
        "--name",
        "Acme Social",
        "--owner-email",
        "owner@acme.example.com",
        "--owner-password",
        "owner-pass-77",
    ]
    for key, value in extra.items():
        args += [f"--{key.replace('_', '-')}", value]
    return args


def test_tenant_create_list_suspend_resume(pasok, app):
    result = pasok(*tenant_args(theme="aurora", currency="idr"))
    assert result.exit_code == 0, result.output
    assert "http://acme.localhost/" in result.output
    listed = json.loads(pasok("tenant", "list", "--json").output)
    assert listed[0]["slug"] == "acme"
    assert listed[0]["currency"] == "IDR"
    assert listed[0]["locale"] == "id"  # IDR panels default to Bahasa Indonesia
    assert listed[0]["timezone"] == "Asia/Jakarta"
    assert "acme" in pasok("tenant", "list").output
    assert pasok("tenant", "suspend", "acme", "--reason", "unpaid").exit_code == 0
    assert json.loads(pasok("tenant", "list", "--json").output)[0]["status"] == "suspended"
    assert pasok("tenant", "resume", "acme").exit_code == 0
    assert json.loads(pasok("tenant", "list", "--json").output)[0]["status"] == "active"
    with app.app_context(), across_tenants():
        from app.audit.models import AuditEntry

        actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["tenant.create", "tenant.suspend", "tenant.resume"]


@pytest.mark.parametrize(
    "args, message",
    [
        (tenant_args("www"), "Slug 'www' is reserved"),
        (tenant_args("console"), "is reserved"),
        (tenant_args("Bad_Slug"), "Slug must be 3-32 lowercase letters"),
        (tenant_args("ab"), "Slug must be"),
        (tenant_args(theme="nope"), "Unknown theme 'nope'"),
        (tenant_args(currency="EUR"), "Currency must be one of USD, IDR"),
        (tenant_args(locale="fr"), "Locale must be one of en, id"),
        ([*tenant_args()[:-1], "123"], "Password must be at least 8 characters"),
        ([*tenant_args()[:-1], "password123"], "Password is too easy to guess"),
        ([*tenant_args()[:6], "not-an-email", *tenant_args()[7:]], "Enter a valid email address"),
        (["tenant", "suspend", "ghost"], "No tenant 'ghost'"),
        (["tenant", "resume", "ghost"], "No tenant 'ghost'"),
        (["customer", "create", "--tenant", "ghost", "--email", "a@example.com",
          "--password", "fine-pass-12"], "No tenant 'ghost'"),
        (["domain", "add", "ghost", "x.example.com"], "No tenant 'ghost'"),
    ],
)  # fmt: skip
def test_bad_arguments_fail_with_one_readable_line(pasok, args, message):
    result = pasok(*args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_duplicates_are_refused(pasok):
    assert pasok(*tenant_args()).exit_code == 0
    assert "already taken" in pasok(*tenant_args()).output
    result = pasok(*tenant_args("other"))
    assert result.exit_code == 0  # the same owner email on another tenant is fine
    args = ["customer", "create", "--tenant", "acme", "--email", "a@example.com"]
    assert pasok(*args, "--password", "fine-pass-12").exit_code == 0
    duplicate = pasok(*args[:-1], "A@Example.com", "--password", "fine-pass-12")
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output
    assert pasok("operator", "create", "--email", "op@example.com", "--password", "op-pass-123")
    again = pasok("operator", "create", "--email", "OP@example.com", "--password", "op-pass-123")
    assert again.exit_code != 0 and "already exists" in again.output


def test_suspending_twice_says_so(pasok):
    pasok(*tenant_args())
    pasok("tenant", "suspend", "acme")
    result = pasok("tenant", "suspend", "acme")
    assert result.exit_code != 0 and "already suspended" in result.output
    pasok("tenant", "resume", "acme")
    assert "is not suspended" in pasok("tenant", "resume", "acme").output


def test_customer_and_domain(pasok, app):
    pasok(*tenant_args())
    args = ["--tenant", "acme", "--email", "Budi@Example.com", "--password", "fine-pass-12"]
    assert pasok("customer", "create", *args).exit_code == 0
    assert pasok("domain", "add", "acme", "Panel.Acme-Social.com.", "--verified").exit_code == 0
    pending = pasok("domain", "add", "acme", "pending.acme-social.com")
    assert "awaits the DNS TXT record" in pending.output
    for bad, message in [
        ("not a host", "is not a valid hostname"),
        ("shop.localhost", "under the platform's own domain"),
        ("panel.acme-social.com", "already in use"),
    ]:
        result = pasok("domain", "add", "acme", bad)
        assert result.exit_code != 0 and message in result.output
    with app.app_context(), across_tenants():
        assert db.session.scalar(select(User.email).where(User.kind == "customer")) == (
            "budi@example.com"
        )
        domains = dict(db.session.execute(select(Domain.hostname, Domain.verified)).all())
    assert domains == {"panel.acme-social.com": True, "pending.acme-social.com": False}


def test_seed_demo_is_idempotent(pasok, app):
    first = pasok("seed-demo")
    assert first.exit_code == 0, first.output
    assert "tenant acme" in first.output and "tenant toko" in first.output
    second = pasok("seed-demo")
    assert second.exit_code == 0 and second.output == ""
    with app.app_context(), across_tenants():
        tenants = {t.slug: t for t in db.session.scalars(select(Tenant))}
        assert tenants["acme"].currency == "USD" and tenants["acme"].default_locale == "en"
        assert tenants["toko"].currency == "IDR" and tenants["toko"].default_locale == "id"
        assert tenants["acme"].theme != tenants["toko"].theme
        # Opening credits, made once however often the seed runs, so demo orders go through.
        from app.ledger import balance, verify_ledger, wallet_of, wholesale_wallet_of

        customers = {u.email: u for u in db.session.scalars(select(User))}
        assert balance(wallet_of(customers["alice@example.com"])) == Decimal("25")
        assert balance(wallet_of(customers["budi@example.com"])) == Decimal("400000")
        assert balance(wholesale_wallet_of(tenants["toko"])) == Decimal("100")
        assert verify_ledger().ok


def test_the_console_script_runs_without_a_traceback(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path}/cli.sqlite3",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    pasok = [sys.executable, "-c", "from app.cli import main; main()"]
    upgrade = subprocess.run([*pasok, "db", "upgrade"], env=env, capture_output=True, text=True)
    assert upgrade.returncode == 0, upgrade.stderr
    bad = subprocess.run(
        [*pasok, "tenant", "create", "www", "--name", "X", "--owner-email", "a@example.com",
         "--owner-password", "fine-pass-12"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 1
    assert bad.stderr.strip() == "Error: Slug 'www' is reserved"
    routes = subprocess.run([*pasok, "routes"], env=env, capture_output=True, text=True)
    assert "console.tenants" in routes.stdout


def test_provider_add_list_balance_and_sync(pasok, sandbox):
    args = ["provider", "add", "sbx", "--url", sandbox.url, "--key", sandbox.key, "--honours-ref"]
    assert pasok(*args).exit_code == 0
    listed = json.loads(pasok("provider", "list", "--json").output)
    assert listed[0]["name"] == "sbx" and listed[0]["honours_ref"] is True
    assert sandbox.key not in pasok("provider", "list", "--json").output
    balance = pasok("provider", "balance", "sbx")
    assert balance.exit_code == 0 and "10000.00000 USD" in balance.output
    synced = pasok("provider", "sync", "sbx", "--publish")
    assert synced.exit_code == 0, synced.output
    assert "50 added" in synced.output
    assert "Syncing" in synced.output  # the progress bar (on stderr)
    assert json.loads(pasok("provider", "list", "--json").output)[0]["services"] == 50
    sandbox.admin("catalog", {"reprice": {"2": "3.21"}})
    again = pasok("provider", "sync", "sbx")
    assert "0 added, 1 repriced" in again.output and "repriced: 2" in again.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["provider", "add", "x", "--url", "ftp://x", "--key", "k"], "API URL must be"),
        (["provider", "add", "bad name", "--url", "http://x.example", "--key", "k"],
         "Provider name must be"),
        (["provider", "add", "x", "--url", "http://x.example", "--key", " "], "API key must be"),
        (["provider", "add", "x", "--url", "http://x.example", "--key", "k", "--currency", "EUR"],
         "Unknown currency"),
        (["provider", "sync", "ghost"], "No provider 'ghost'"),
        (["provider", "balance", "ghost"], "No provider 'ghost'"),
        (["fx", "set", "USD", "IDR", "abc"], "is not a number"),
        (["fx", "set", "USD", "IDR", "0"], "must be more than zero"),
        (["fx", "set", "USD", "XYZ", "5"], "Unknown currency 'XYZ'"),
        (["fx", "set", "USD", "USD", "1"], "two different currencies"),
    ],
)  # fmt: skip
def test_provider_and_fx_bad_arguments(pasok, args, message):
    result = pasok(*args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_provider_down_is_one_line(pasok):
    pasok("provider", "add", "down", "--url", "http://127.0.0.1:9/api/v2", "--key", "k")
    result = pasok("provider", "balance", "down")
    assert result.exit_code == 1 and "down did not answer" in result.output
    result = pasok("provider", "sync", "down")
    assert result.exit_code == 1 and "did not list its services" in result.output


def test_fx_set_and_list(pasok):
    assert pasok("fx", "set", "usd", "idr", "16250").output.strip() == "FX USD/IDR = 16250"
    rows = json.loads(pasok("fx", "list", "--json").output)
    assert [(r["base"], r["quote"], r["rate"]) for r in rows] == [("USD", "IDR", "16250")]


def test_gateway_set_stores_secrets_encrypted_and_lists_them_masked(pasok, app):
    from sqlalchemy import Text, type_coerce

    from app.payments import GatewayAccount

    assert pasok(*tenant_args(currency="idr")).exit_code == 0
    acme = ["gateway", "set", "--tenant", "acme"]
    stripe = pasok(*acme, "stripe", "--secret-key", "sk_test_acme_0001",
                   "--webhook-secret", "whsec_abc12345",
                   "--api-base", "http://127.0.0.1:6392/stripe")  # fmt: skip
    midtrans = pasok(*acme, "midtrans", "--server-key", "SB-Mid-server-0002",
                     "--client-key", "SB-Mid-client-1")  # fmt: skip
    platform = pasok("gateway", "set", "stripe", "--secret-key", "sk_test_platform_9",
                     "--webhook-secret", "whsec_p")  # fmt: skip

    assert [r.exit_code for r in (stripe, midtrans, platform)] == [0, 0, 0], stripe.output
    assert "••••0001" in stripe.output and "sk_test_acme_0001" not in stripe.output
    assert "the platform" in platform.output
    listed = json.loads(pasok("gateway", "list", "--tenant", "acme", "--json").output)
    assert [(row["gateway"], row["key"]) for row in listed] == [
        ("midtrans", "••••0002"),
        ("stripe", "••••0001"),
    ]
    assert listed[0]["production"] is False
    with app.app_context(), across_tenants():
        raw = db.session.scalars(select(type_coerce(GatewayAccount.secret_key, Text))).all()
        assert raw and not any("sk_test" in token or "Mid-server" in token for token in raw)
        stored = db.session.scalars(select(GatewayAccount.secret_key)).all()
        assert sorted(stored) == ["SB-Mid-server-0002", "sk_test_acme_0001", "sk_test_platform_9"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gateway", "set", "--tenant", "nope", "stripe", "--secret-key", "sk_1",
          "--webhook-secret", "whsec_1"], "nope"),
        (["gateway", "set", "stripe", "--secret-key", "pk_live_1", "--webhook-secret", "whsec_1"],
         "The key starts with sk_ or rk_"),
        (["gateway", "set", "stripe", "--secret-key", "sk_1", "--webhook-secret", "whsec_1",
          "--api-base", "ftp://x"], "http(s) URL"),
        (["gateway", "set", "midtrans", "--server-key", "a b", "--client-key", "c"],
         "does not look like a key"),
    ],
)  # fmt: skip
def test_gateway_set_refuses_bad_input_in_one_line(pasok, args, message):
    result = pasok(*args)
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
    assert pasok("gateway", "list", "--json").output.strip() == "[]"
