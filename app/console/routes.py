from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, logout_user
from sqlalchemy import func, select
from wtforms.fields.choices import SelectChoice

from app.accounts.models import CUSTOMER, OPERATOR, User
from app.accounts.web import apply_password_change, attach_error, auth_rate_limit, sign_in
from app.auth.forms import ChangePasswordForm, LoginForm
from app.console import bp
from app.console.forms import ConfirmForm, SuspendForm, TenantForm
from app.errors import ValidationError
from app.extensions import db
from app.i18n import remember_locale
from app.navigation import safe_next
from app.panels.models import Tenant
from tenants.context import across_tenants
from tenants.provisioning import create_tenant, resume_tenant, suspend_tenant


@bp.route("/login", methods=["GET", "POST"])
@auth_rate_limit()
def login():
    """Operators sign in."""
    if current_user.is_authenticated:
        return redirect(url_for("console.tenants"))
    form = LoginForm()
    if form.validate_on_submit() and sign_in(OPERATOR, form):
        return redirect(safe_next(url_for("console.tenants")))
    return render_template("console/login.html", form=form)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """Operators sign out."""
    if request.method == "POST":
        logout_user()
        return redirect(url_for("console.login"))
    return render_template("console/logout.html")


@bp.get("/")
@login_required
def index():
    return redirect(url_for("console.tenants"))


@bp.route("/tenants", methods=["GET", "POST"])
@login_required
def tenants():
    """Every tenant, and the form to create one."""
    themes = current_app.extensions["pasok_themes"]
    form = TenantForm()
    form.theme.choices = [SelectChoice(t.name, t.title) for t in themes.values()]
    if form.validate_on_submit():
        with across_tenants():
            try:
                tenant = create_tenant(
                    slug=form.slug.data,
                    name=form.name.data,
                    owner_email=form.owner_email.data,
                    owner_password=form.owner_password.data,
                    theme=form.theme.data,
                    currency=form.currency.data,
                    locale=form.locale.data,
                    actor=current_user,
                )
            except ValidationError as error:
                db.session.rollback()
                if error.field == "email":
                    error.field = "owner_email"
                elif error.field == "password":
                    error.field = "owner_password"
                attach_error(form, error)
            else:
                db.session.commit()
                flash(_("Panel %(slug)s created.", slug=tenant.slug), "success")
                return redirect(url_for("console.tenants"))
    with across_tenants():
        customers = dict(
            db.session.execute(
                select(User.tenant_id, func.count())
                .where(User.kind == CUSTOMER)
                .group_by(User.tenant_id)
            ).all()
        )
        rows = db.session.scalars(select(Tenant).order_by(Tenant.created_at.desc())).all()
    return render_template(
        "console/tenants.html",
        form=form,
        tenants=rows,
        customers=customers,
        suspend_form=SuspendForm(),
        confirm_form=ConfirmForm(),
        platform_domain=current_app.config["PASOK_PLATFORM_DOMAIN"],
    )


@bp.post("/tenants/<int:tenant_id>/suspend")
@login_required
def suspend(tenant_id: int):
    """Suspend a panel: its storefront, back office and API stop; its webhooks do not."""
    form = SuspendForm()
    if form.validate_on_submit():
        reason = form.reason.data or ""
        change_status(
            tenant_id,
            lambda tenant: suspend_tenant(tenant, reason=reason, actor=current_user),
            lambda slug: _("Panel %(slug)s suspended.", slug=slug),
        )
    return redirect(url_for("console.tenants"))


@bp.post("/tenants/<int:tenant_id>/resume")
@login_required
def resume(tenant_id: int):
    """Resume a suspended panel."""
    if ConfirmForm().validate_on_submit():
        change_status(
            tenant_id,
            lambda tenant: resume_tenant(tenant, actor=current_user),
            lambda slug: _("Panel %(slug)s resumed.", slug=slug),
        )
    return redirect(url_for("console.tenants"))


def change_status(tenant_id: int, change, done) -> None:
    """Apply `change` to the tenant and say how it went; 404 for an unknown tenant."""
    with across_tenants():
        tenant = db.session.get(Tenant, tenant_id)
        if tenant is None:
            abort(404)
        try:
            change(tenant)
        except ValidationError as error:
            db.session.rollback()
            flash(str(error), "error")
        else:
            db.session.commit()
            flash(done(tenant.slug), "success")


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    """Operators change their password."""
    form = ChangePasswordForm()
    if form.validate_on_submit() and apply_password_change(form):
        flash(_("Your password is changed. Your other sessions are signed out."), "success")
        return redirect(url_for("console.account"))
    return render_template("console/account.html", form=form)


@bp.post("/language")
def set_language():
    remember_locale(request.form.get("locale", ""))
    return redirect(safe_next(url_for("console.tenants")))
