"""`pasok sandbox-provider`: serve a sandbox upstream panel on a port."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import click
from werkzeug.serving import run_simple

from app.sandbox import create_sandbox_app
from app.sandbox.options import (
    MAX_SERVICES,
    SandboxOptions,
    as_float,
    check_rate,
    check_seconds,
    parse_fault,
    parse_money,
)


class ArgumentError(click.ClickException):
    exit_code = 2


class OneLineCommand(click.Command):
    """Bad arguments get one line, `Error: …`, and exit 2: no usage block, no traceback."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as error:
            raise ArgumentError(error.format_message()) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as error:
            raise ArgumentError(error.format_message()) from None


class ParsedBy(click.ParamType):
    """A click type that parses with one of the options module's functions."""

    def __init__(self, name: str, parse) -> None:
        self.name = name
        self.parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        if not isinstance(value, str):
            return value
        try:
            return self.parse(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


def parse_rate(text: str) -> float:
    rate = as_float("a rate", text)
    check_rate("a rate", rate)
    return rate


def parse_seconds(text: str) -> float:
    seconds = as_float("seconds", text)
    check_seconds("seconds", seconds)
    return seconds


RATE = ParsedBy("RATE", parse_rate)
SECONDS = ParsedBy("SECONDS", parse_seconds)
FAULT = ParsedBy("KIND:RATE", parse_fault)
AMOUNT = ParsedBy("AMOUNT", lambda text: parse_money("balance", text))


@click.command("sandbox-provider", cls=OneLineCommand)
@click.option("--port", required=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--services",
    default=50,
    show_default=True,
    type=click.IntRange(1, MAX_SERVICES),
    help="How many services to generate.",
)
@click.option(
    "--latency-ms",
    default=0,
    show_default=True,
    type=click.IntRange(0, 600_000),
    help="Delay every API reply by this much.",
)
@click.option(
    "--fail-rate", default="0", show_default=True, type=RATE, help="Share of orders Canceled."
)
@click.option(
    "--partial-rate", default="0.1", show_default=True, type=RATE, help="Share of orders Partial."
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    type=FAULT,
    help="timeout, 5xx, html or active_order, with its rate (say 5xx:0.05). Repeatable.",
)
@click.option(
    "--complete-after",
    default="30",
    show_default=True,
    type=SECONDS,
    help="Seconds from add to an order's final status.",
)
@click.option("--no-ref", is_flag=True, help="Ignore `ref`: a repeated add is a new order.")
@click.option("--seed", default=1, show_default=True, type=int, help="Seeds outcomes and faults.")
@click.option("--key", default="sandbox-key", show_default=True, help="The API key to accept.")
@click.option("--balance", default="10000", show_default=True, type=AMOUNT)
@click.option("--currency", default="USD", show_default=True)
@click.option(
    "--timeout-sleep",
    default="30",
    show_default=True,
    type=SECONDS,
    help="How long a timeout fault holds its reply.",
)
def sandbox_provider_command(
    port: int,
    host: str,
    services: int,
    latency_ms: int,
    fail_rate: float,
    partial_rate: float,
    faults: tuple[tuple[str, float], ...],
    complete_after: float,
    no_ref: bool,
    seed: int,
    key: str,
    balance: Decimal,
    currency: str,
    timeout_sleep: float,
) -> None:
    """Serve a sandbox upstream SMM panel (API v2 at /api/v2) for demos, tests and benchmarks."""
    kinds = [kind for kind, _ in faults]
    for kind in kinds:
        if kinds.count(kind) > 1:
            raise click.BadParameter(f"{kind} is given more than once", param_hint="'--fault'")
    try:
        options = SandboxOptions(
            services=services,
            latency_ms=latency_ms,
            fail_rate=fail_rate,
            partial_rate=partial_rate,
            faults=dict(faults),
            complete_after=complete_after,
            honour_ref=not no_ref,
            seed=seed,
            api_key=key,
            balance=balance,
            currency=currency.upper(),
            timeout_sleep_s=timeout_sleep,
        )
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    app = create_sandbox_app(options)
    click.echo(f"Sandbox provider: http://{host}:{port}/api/v2")
    click.echo(f"API key: {options.api_key}")
    click.echo(describe(options))
    try:
        run_simple(host, port, app, threaded=True)
    except OSError as error:
        raise click.ClickException(f"Cannot serve on {host}:{port}: {error}") from None


def describe(options: SandboxOptions) -> str:
    faults = ", ".join(f"{kind} {rate:g}" for kind, rate in options.faults.items()) or "none"
    return (
        f"{options.services} services, balance {options.balance} {options.currency}, "
        f"seed {options.seed}; orders finish after {options.complete_after:g}s "
        f"(partial rate {options.partial_rate:g}, fail rate {options.fail_rate:g}); "
        f"ref {'honoured' if options.honour_ref else 'ignored'}; faults: {faults}"
    )
