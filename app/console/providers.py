"""Console pages for upstream providers: add and edit them, test the connection, import their
services and read what an import changed."""

from __future__ import annotations

import re
from decimal import Decimal

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import case, func, select
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import selectinload

from app.accounts.web import attach_error
from app.catalog.models import CatalogChange, ServiceRoute
from app.catalog.sync import (
    CHANGE_KINDS,
    SyncFailed,
    fetch_services,
    record_import,
    sync_provider,
)
from app.console import bp
from app.console.catalog import amount_in, get_or_404
from app.console.forms import ConfirmForm
from app.console.supply_forms import ImportForm, ProviderEditForm, ProviderForm
from app.crypto import mask
from app.errors import ValidationError
from app.extensions import db
from app.money.amounts import parse_plain_decimal
from app.navigation import safe_next
from app.providers.models import Provider, ProviderService
from app.providers.services import (
    ProviderUnreachable,
    add_provider,
    check_balance,
    update_provider,
)

RUN = re.compile(r"^[0-9a-f]{1,32}$")
# A report lists this many changes of each kind; the counts are always complete.
REPORT_ROWS = 200


def timeout_from(form) -> float | None:
    """The typed timeout in seconds, or None with the error on the field."""
    try:
        seconds = parse_plain_decimal(
            form.timeout_seconds.data, allow_negative=False, field="timeout_seconds"
        )
    except ValidationError as error:
        attach_error(form, error)
        return None
    if not Decimal(1) <= seconds <= Decimal(120):
        attach_error(form, ValidationError(_l("Timeout must be 1-120 seconds"), "timeout_seconds"))
        return None
    return float(seconds)


def service_counts() -> dict[int, tuple[int, int]]:
    """Per provider: the services it has listed, and those it still lists."""
    rows = db.session.execute(
        select(
            ProviderService.provider_id,
            func.count(),
            func.sum(case((ProviderService.available.is_(True), 1), else_=0)),
        ).group_by(ProviderService.provider_id)
    )
    return {provider_id: (total, available or 0) for provider_id, total, available in rows}


def get_provider_or_404(provider_id: int) -> Provider:
    return get_or_404(Provider, provider_id)


@bp.route("/providers", methods=["GET", "POST"])
@login_required
def providers():
    """Every upstream provider, and the form to add one."""
    form = ProviderForm()
    if form.validate_on_submit():
        timeout = timeout_from(form)
        if timeout is not None:
            try:
                provider = add_provider(
                    form.name.data,
                    form.api_url.data,
                    form.api_key.data,
                    currency=form.currency.data,
                    honours_ref=form.honours_ref.data,
                    timeout_seconds=timeout,
                    actor=current_user,
                )
            except ValidationError as error:
                db.session.rollback()
                attach_error(form, error)
            else:
                db.session.commit()
                flash(
                    _(
                        "Provider %(name)s added. Test the connection, then import its services.",
                        name=provider.name,
                    ),
                    "success",
                )
                return redirect(url_for("console.provider", provider_id=provider.id))
    rows = db.session.scalars(select(Provider).order_by(Provider.name)).all()
    return render_template(
        "console/providers.html", form=form, providers=rows, counts=service_counts()
    )


@bp.route("/providers/<int:provider_id>", methods=["GET", "POST"])
@login_required
def provider(provider_id: int):
    """One provider: its settings, connection test, imports and their reports."""
    provider = get_provider_or_404(provider_id)
    # The stored values fill the form on GET only: a POST is read as sent.
    form = ProviderEditForm(obj=provider) if request.method == "GET" else ProviderEditForm()
    if request.method == "GET":
        form.api_key.data = ""
        form.timeout_seconds.data = f"{provider.timeout_seconds:g}"
    if form.validate_on_submit():
        timeout = timeout_from(form)
        if timeout is not None:
            try:
                update_provider(
                    provider,
                    api_url=form.api_url.data,
                    api_key=(form.api_key.data or "").strip() or None,
                    currency=form.currency.data,
                    honours_ref=form.honours_ref.data,
                    enabled=form.enabled.data,
                    timeout_seconds=timeout,
                    actor=current_user,
                )
            except ValidationError as error:
                db.session.rollback()
                attach_error(form, error)
            else:
                db.session.commit()
                flash(_("Provider %(name)s saved.", name=provider.name), "success")
                return redirect(url_for("console.provider", provider_id=provider.id))
    total, available = service_counts().get(provider.id, (0, 0))
    routed = db.session.scalar(
        select(func.count(func.distinct(ServiceRoute.service_id)))
        .join(ProviderService, ProviderService.id == ServiceRoute.provider_service_id)
        .where(ProviderService.provider_id == provider.id)
    )
    return render_template(
        "console/provider.html",
        provider=provider,
        form=form,
        masked_key=mask(provider.api_key),
        import_form=ImportForm(formdata=None),
        confirm_form=ConfirmForm(),
        total=total,
        available=available,
        routed=routed,
        runs=recent_runs(provider),
    )


def recent_runs(provider: Provider, limit: int = 10) -> list[dict]:
    """The provider's latest imports that changed something, newest first."""
    latest = (
        select(CatalogChange.sync_run, func.min(CatalogChange.at).label("at"))
        .where(CatalogChange.provider_id == provider.id, CatalogChange.sync_run.is_not(None))
        .group_by(CatalogChange.sync_run)
        .order_by(func.min(CatalogChange.at).desc())
        .limit(limit)
    ).subquery()
    runs: dict[str, dict] = {}
    rows = db.session.execute(
        select(latest.c.sync_run, latest.c.at, CatalogChange.kind, func.count())
        .join(CatalogChange, CatalogChange.sync_run == latest.c.sync_run)
        .group_by(latest.c.sync_run, latest.c.at, CatalogChange.kind)
        .order_by(latest.c.at.desc())
    )
    for run, at, kind, count in rows:
        runs.setdefault(run, {"run": run, "at": at, "counts": {}})["counts"][kind] = count
    return list(runs.values())


@bp.post("/providers/<int:provider_id>/toggle")
@login_required
def provider_toggle(provider_id: int):
    """Enable or disable a provider (a disabled one gets no orders and sets no prices)."""
    provider = get_provider_or_404(provider_id)
    if ConfirmForm().validate_on_submit():
        update_provider(
            provider,
            api_url=provider.api_url,
            api_key=None,
            currency=provider.currency,
            honours_ref=provider.honours_ref,
            enabled=not provider.enabled,
            timeout_seconds=provider.timeout_seconds,
            actor=current_user,
        )
        db.session.commit()
        if provider.enabled:
            flash(_("Provider %(name)s enabled.", name=provider.name), "success")
        else:
            flash(_("Provider %(name)s disabled.", name=provider.name), "success")
    return redirect(safe_back(provider))


def safe_back(provider: Provider) -> str:
    return safe_next(url_for("console.provider", provider_id=provider.id))


@bp.post("/providers/<int:provider_id>/check")
@login_required
def provider_check(provider_id: int):
    """Test the connection: ask the upstream for our balance there."""
    provider = get_provider_or_404(provider_id)
    if ConfirmForm().validate_on_submit():
        try:
            balance = check_balance(provider)
            db.session.commit()
        except ProviderUnreachable as error:
            db.session.rollback()
            flash(str(error), "error")
        except (ArithmeticError, ValueError, StatementError):
            # A balance too large or too precise to keep is an answer we cannot trust.
            db.session.rollback()
            flash(
                _("%(name)s answered with a balance Pasok cannot read.", name=provider.name),
                "error",
            )
        else:
            flash(
                _(
                    "Connected to %(name)s. Balance: %(amount)s %(currency)s.",
                    name=provider.name,
                    amount=amount_in(balance.amount, balance.currency),
                    currency=balance.currency,
                ),
                "success",
            )
    return redirect(safe_back(provider))


@bp.post("/providers/<int:provider_id>/import")
@login_required
def provider_import(provider_id: int):
    """Import the provider's services into the catalog, then show what changed."""
    provider = get_provider_or_404(provider_id)
    form = ImportForm()
    if not form.validate_on_submit():
        return redirect(url_for("console.provider", provider_id=provider.id))
    publish = bool(form.publish.data)
    try:
        upstream = fetch_services(provider)
        report = sync_provider(provider, upstream, publish=publish)
        record_import(provider, report, publish=publish, actor=current_user)
        db.session.commit()
    except SyncFailed as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(url_for("console.provider", provider_id=provider.id))
    except (ArithmeticError, ValueError, StatementError) as error:
        # A listing with a cost or limit the catalog cannot keep (a rate of 1e30, or with more
        # than 6 decimal places): nothing is imported, and the operator is told why.
        db.session.rollback()
        reason = error.orig if isinstance(error, StatementError) else error
        flash(
            _(
                "%(name)s listed services Pasok cannot import: %(error)s",
                name=provider.name,
                error=str(reason)[:200],
            ),
            "error",
        )
        return redirect(url_for("console.provider", provider_id=provider.id))
    flash(
        _(
            "Import done: %(seen)s services listed; %(added)s added, %(repriced)s repriced, "
            "%(updated)s updated, %(removed)s removed, %(restored)s restored.",
            seen=report.seen,
            **{kind: len(getattr(report, kind)) for kind in CHANGE_KINDS},
        ),
        "success",
    )
    return redirect(
        url_for("console.sync_report", provider_id=provider.id, run=report.run, seen=report.seen)
    )


@bp.get("/providers/<int:provider_id>/imports/<run>")
@login_required
def sync_report(provider_id: int, run: str):
    """What one import changed: counts, and each change with its values before and after."""
    provider = get_provider_or_404(provider_id)
    if not RUN.match(run):
        abort(404)
    where = (CatalogChange.provider_id == provider.id, CatalogChange.sync_run == run)
    counts = dict(
        db.session.execute(
            select(CatalogChange.kind, func.count()).where(*where).group_by(CatalogChange.kind)
        ).all()
    )
    changes = {
        kind: db.session.scalars(
            select(CatalogChange)
            .where(*where, CatalogChange.kind == kind)
            .order_by(CatalogChange.id)
            .limit(REPORT_ROWS)
            .options(selectinload(CatalogChange.provider_service))
        ).all()
        for kind in CHANGE_KINDS
        if counts.get(kind)
    }
    ps_ids = {c.provider_service_id for rows in changes.values() for c in rows}
    services = dict(
        db.session.execute(
            select(ServiceRoute.provider_service_id, func.min(ServiceRoute.service_id))
            .where(ServiceRoute.provider_service_id.in_(ps_ids))
            .group_by(ServiceRoute.provider_service_id)
        ).all()
    )
    started = db.session.scalar(select(func.min(CatalogChange.at)).where(*where))
    seen = request.args.get("seen", "")
    return render_template(
        "console/sync_report.html",
        provider=provider,
        run=run,
        counts=counts,
        changes=changes,
        kinds=CHANGE_KINDS,
        services=services,
        started=started,
        seen=int(seen) if seen.isdigit() and len(seen) < 10 else None,
        report_rows=REPORT_ROWS,
    )
