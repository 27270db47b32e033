"""`pasok gateway-simulator`: serve stand-ins for Stripe and Midtrans on a port."""

from __future__ import annotations

import click
from werkzeug.serving import run_simple

from app.gatewaysim import create_simulator_app
from app.sandbox.cli import OneLineCommand


@click.command("gateway-simulator", cls=OneLineCommand)
@click.option("--port", required=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
def gateway_simulator_command(port: int, host: str) -> None:
    """Serve local stand-ins for the Stripe API and Midtrans Snap/Core, with pay pages that
    send signed webhooks."""
    app = create_simulator_app()
    base = f"http://{host}:{port}"
    click.echo(f"Stripe API base: {base}/stripe (any sk_… key is its own account)")
    click.echo(f"Midtrans base: {base}/midtrans (Snap at {base}/midtrans/snap/v1)")
    click.echo(f"Deliveries: {base}/__sim/deliveries")
    try:
        run_simple(host, port, app, threaded=True)
    except OSError as error:
        raise click.ClickException(f"Cannot serve on {host}:{port}: {error}") from None
