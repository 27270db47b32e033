"""The storefront's `/api` page: the API's documentation (for everyone, with this panel's own
address in every example) and, for a signed-in customer, their API keys: create, rotate,
revoke. A new key is shown once, on the page answering the form, and never again."""

from __future__ import annotations

from flask import abort, flash, g, make_response, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from limits import parse as parse_limit
from wtforms import StringField

from app.accounts.models import CUSTOMER
from app.accounts.web import attach_error
from app.api import pages_bp
from app.api.errors import ERRORS
from app.api.keys import (
    MAX_KEYS_PER_CUSTOMER,
    KeyLimitReached,
    NewKey,
    create_key,
    customer_keys,
    revoke_key,
    rotate_key,
)
from app.api.models import MAX_LABEL
from app.api.routes import api_rate_limit
from app.catalog.order_types import ORDER_TYPES
from app.errors import NotFound, ValidationError
from app.extensions import db, login_manager
from app.pricing.retail import price_list
from tenants.web import render_themed


@pages_bp.record_once
def _sign_in_first(state) -> None:
    login_manager.blueprint_login_views["api_pages"] = "auth.login"


# How the API's rate limit reads on the page, by its period.
LIMIT_PERIODS = {
    "second": _l("%(n)s calls a second per API key"),
    "minute": _l("%(n)s calls a minute per API key"),
    "hour": _l("%(n)s calls an hour per API key"),
    "day": _l("%(n)s calls a day per API key"),
}


def rate_limit_text() -> str:
    """The API's rate limit in the page's language ("600 calls a minute per API key")."""
    configured = api_rate_limit()
    try:
        item = parse_limit(configured)
    except ValueError:
        return configured
    text = LIMIT_PERIODS.get(item.GRANULARITY.name)
    if text is None or item.multiples != 1:
        return configured
    return str(text) % {"n": item.amount}


class ApiKeyForm(FlaskForm):
    label = StringField(
        _l("Label"),
        render_kw={"maxlength": MAX_LABEL, "autocomplete": "off", "placeholder": _l("e.g. my bot")},
    )


class KeyActionForm(FlaskForm):
    """Rotate or revoke: nothing to fill in but the CSRF token."""


def signed_in_customer() -> bool:
    return current_user.is_authenticated and current_user.kind == CUSTOMER


def render_api_page(form: ApiKeyForm | None = None, new: NewKey | None = None, status=200):
    tenant = g.tenant
    prices = price_list(tenant.id)
    example_service = prices.prices[0].service_id if prices.prices else 1
    keys = customer_keys(tenant.id, current_user.id) if signed_in_customer() else []
    body = render_themed(
        "storefront/api.html",
        endpoint=f"{request.host_url}api/v2",
        openapi_url=url_for("api.openapi_description", _external=True),
        example_service=example_service,
        order_types=list(ORDER_TYPES.values()),
        errors=ERRORS,
        keys=keys,
        max_keys=MAX_KEYS_PER_CUSTOMER,
        form=form or ApiKeyForm(formdata=None),
        action_form=KeyActionForm(),
        new_key=new,
        rate_limit=rate_limit_text(),
    )
    response = make_response(body, status)
    # The page may hold a new key: never cached, never brought back by the back button.
    response.headers["Cache-Control"] = "no-store"
    return response


@pages_bp.get("/api")
def index():
    """The API's documentation and, for customers, their keys."""
    return render_api_page()


@pages_bp.post("/api/keys")
@login_required
def create():
    """Make a new key and show it, once."""
    if current_user.kind != CUSTOMER:
        abort(404)
    form = ApiKeyForm()
    if not form.validate_on_submit():
        return render_api_page(form, status=400)
    try:
        new = create_key(g.tenant.id, current_user.id, form.label.data, actor=current_user)
    except (KeyLimitReached, ValidationError) as error:
        db.session.rollback()
        if isinstance(error, ValidationError):
            attach_error(form, error)
        else:
            form.form_errors.append(str(error))
        return render_api_page(form, status=400)
    db.session.commit()
    return render_api_page(new=new)


@pages_bp.post("/api/keys/<int:key_id>/rotate")
@login_required
def rotate(key_id: int):
    """Replace a key by a new one with the same label; the old one stops working at once."""
    if current_user.kind != CUSTOMER or not KeyActionForm().validate_on_submit():
        abort(404)
    try:
        new = rotate_key(g.tenant.id, current_user.id, key_id, actor=current_user)
    except NotFound:
        db.session.rollback()
        abort(404)
    db.session.commit()
    return render_api_page(new=new)


@pages_bp.post("/api/keys/<int:key_id>/revoke")
@login_required
def revoke(key_id: int):
    """Stop a key from working."""
    if current_user.kind != CUSTOMER or not KeyActionForm().validate_on_submit():
        abort(404)
    try:
        key = revoke_key(g.tenant.id, current_user.id, key_id, actor=current_user)
    except NotFound:
        db.session.rollback()
        abort(404)
    db.session.commit()
    flash(_("API key %(prefix)s… revoked.", prefix=key.prefix), "success")
    return redirect(url_for("api_pages.index"))
