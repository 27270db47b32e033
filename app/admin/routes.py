from datetime import datetime, time
from functools import wraps
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, logout_user
from sqlalchemy import func, select
from wtforms.fields.choices import SelectChoice

from app.accounts.models import CUSTOMER, OWNER, STAFF, User
from app.accounts.web import apply_password_change, auth_rate_limit, sign_in
from app.admin import bp
from app.admin.forms import BrandingForm, ChangePasswordForm, LanguageForm, LoginForm
from app.extensions import db
from app.i18n import remember_locale
from app.navigation import safe_next
from app.orders.alerts import wholesale_balance
from app.orders.models import Order
from app.panels.models import Tenant
from tenants.provisioning import save_branding
from tenants.theming import ThemeSettingsError, effective_settings


def staff_required(*roles: str):
    """Signed-in staff of this tenant, with one of `roles` when given."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if roles and current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


@bp.route("/login", methods=["GET", "POST"])
@auth_rate_limit()
def login():
    """Staff sign in to the back office."""
    if current_user.is_authenticated:
        return redirect(url_for("admin.dashboard"))
    form = LoginForm()
    if form.validate_on_submit() and sign_in(STAFF, form):
        return redirect(safe_next(url_for("admin.dashboard")))
    return render_template("admin/login.html", form=form)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """Staff sign out."""
    if request.method == "POST":
        logout_user()
        return redirect(url_for("admin.login"))
    return render_template("admin/logout.html")


@bp.get("/")
@staff_required()
def dashboard():
    """The back office's front page: today's figures and the wholesale wallet."""
    tenant_id = g.tenant.id
    zone = ZoneInfo(g.tenant.timezone)
    midnight = datetime.combine(datetime.now(zone).date(), time.min, tzinfo=zone)
    figures = {
        "customers": db.session.scalar(
            select(func.count(User.id)).where(User.tenant_id == tenant_id, User.kind == CUSTOMER)
        ),
        "orders_today": db.session.scalar(
            select(func.count(Order.id)).where(
                Order.tenant_id == tenant_id, Order.created_at >= midnight
            )
        ),
        "today": midnight.date().isoformat(),
        "wholesale_balance": wholesale_balance(tenant_id),
        "platform_currency": current_app.config["PASOK_PLATFORM_CURRENCY"],
    }
    return render_template("admin/dashboard.html", figures=figures)


@bp.route("/branding", methods=["GET", "POST"])
@staff_required(OWNER)
def branding():
    """The owner picks a theme and sets its logo, colours and fonts."""
    themes = current_app.extensions["pasok_themes"]
    tenant = db.session.get(Tenant, g.tenant.id)
    form = BrandingForm(theme=request.values.get("theme", tenant.theme))
    form.theme.choices = [SelectChoice(t.name, t.title) for t in themes.values()]
    chosen = themes.get(form.theme.data) or themes[tenant.theme]
    saved = tenant.theme_settings if chosen.name == tenant.theme else {}
    values = effective_settings(chosen, saved)
    errors: dict[str, str] = {}
    if request.method == "POST" and form.validate_on_submit():
        submitted = {s.key: request.form.get(f"setting-{s.key}", "") for s in chosen.settings}
        values.update(submitted)
        try:
            save_branding(tenant, theme=chosen.name, settings=submitted, actor=current_user)
        except ThemeSettingsError as error:
            db.session.rollback()
            errors = error.errors
        else:
            db.session.commit()
            flash(_("Branding saved. Your storefront shows it now."), "success")
            return redirect(url_for("admin.branding"))
    return render_template(
        "admin/branding.html", form=form, theme=chosen, values=values, errors=errors
    )


@bp.route("/account", methods=["GET", "POST"])
@staff_required()
def account():
    """Staff change their password."""
    form = ChangePasswordForm()
    if form.validate_on_submit() and apply_password_change(form):
        flash(_("Your password is changed. Your other sessions are signed out."), "success")
        return redirect(url_for("admin.account"))
    return render_template("admin/account.html", form=form, language_form=LanguageForm())


@bp.post("/language")
def set_language():
    """Remember the back office language for this browser and user."""
    remember_locale(request.form.get("locale", ""))
    return redirect(safe_next(url_for("admin.dashboard")))
