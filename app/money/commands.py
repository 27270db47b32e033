"""`pasok fx …`: the exchange rates operators keep."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from app.cli_support import operator_command

fx_cli = AppGroup("fx", help="Exchange rates.")


@fx_cli.command("set")
@click.argument("base")
@click.argument("quote")
@click.argument("rate")
@operator_command
def fx_set(base: str, quote: str, rate: str) -> None:
    """Set 1 BASE = RATE QUOTE (for example: pasok fx set USD IDR 16250)."""
    from app.money.fx import set_rate

    stored = set_rate(base, quote, rate, actor="cli")
    click.echo(f"FX {stored.base}/{stored.quote} = {stored.rate:f}")


@fx_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@operator_command
def fx_list(as_json: bool) -> None:
    """List exchange rates."""
    from app.money.fx import list_rates

    rows = [
        {
            "base": r.base,
            "quote": r.quote,
            "rate": f"{r.rate:f}",
            "updated_at": r.updated_at.isoformat(),
        }
        for r in list_rates()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No exchange rates.")
    for r in rows:
        click.echo(f"{r['base']}/{r['quote']} = {r['rate']}  (updated {r['updated_at']})")
