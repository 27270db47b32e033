from flask import flash, g, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, logout_user

from app.accounts.models import CUSTOMER
from app.accounts.services import (
    create_user,
    find_user,
    make_reset_token,
    reset_password,
    user_for_reset_token,
)
from app.accounts.web import (
    apply_password_change,
    attach_error,
    auth_rate_limit,
    sign_in,
    start_session,
)
from app.auth import bp
from app.auth.forms import (
    ChangePasswordForm,
    LanguageForm,
    LoginForm,
    RegisterForm,
    ResetPasswordForm,
    ResetRequestForm,
)
from app.errors import ValidationError
from app.extensions import db
from app.i18n import remember_locale
from app.mail import send_mail
from app.navigation import safe_next
from tenants.web import render_themed


@bp.route("/register", methods=["GET", "POST"])
@auth_rate_limit()
def register():
    """A customer opens an account on this panel."""
    if current_user.is_authenticated:
        return redirect(url_for("storefront.dashboard"))
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = create_user(
                kind=CUSTOMER,
                tenant_id=g.tenant.id,
                email=form.email.data,
                password=form.password.data,
                name=form.name.data or "",
                locale=request.form.get("locale") or None,
            )
        except ValidationError as error:
            db.session.rollback()
            attach_error(form, error)
        else:
            start_session(user)
            db.session.commit()
            flash(_("Welcome! Your account is ready."), "success")
            return redirect(url_for("storefront.dashboard"))
    return render_themed("auth/register.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
@auth_rate_limit()
def login():
    """A customer signs in."""
    if current_user.is_authenticated:
        return redirect(url_for("storefront.dashboard"))
    form = LoginForm()
    if form.validate_on_submit() and sign_in(CUSTOMER, form):
        return redirect(safe_next(url_for("storefront.dashboard")))
    return render_themed("auth/login.html", form=form)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """A customer signs out (GET asks first, so a link cannot sign anyone out)."""
    if request.method == "POST":
        logout_user()
        flash(_("You have signed out."), "info")
        return redirect(url_for("site.home"))
    return render_themed("auth/logout.html")


@bp.route("/reset", methods=["GET", "POST"])
@auth_rate_limit()
def reset_request():
    """A customer asks for a password reset link by email."""
    form = ResetRequestForm()
    if form.validate_on_submit():
        user = find_user(CUSTOMER, form.email.data)
        if user is not None and user.is_enabled:
            link = url_for("auth.reset_password", token=make_reset_token(user), _external=True)
            send_mail(
                user.email,
                _("Reset your password on %(panel)s", panel=g.tenant.name),
                _(
                    "Someone asked to reset the password of your account on %(panel)s.\n\n"
                    "Open this link within an hour to choose a new password:\n%(link)s\n\n"
                    "If it was not you, ignore this email; your password stays the same.",
                    panel=g.tenant.name,
                    link=link,
                ),
            )
        # The same answer whether or not the account exists: no account discovery.
        flash(_("If an account exists for that email, we have sent it a reset link."), "info")
        return redirect(url_for("auth.login"))
    return render_themed("auth/reset_request.html", form=form)


@bp.route("/reset/<token>", methods=["GET", "POST"], endpoint="reset_password")
@auth_rate_limit()
def choose_new_password(token: str):
    """A customer chooses a new password from a reset link."""
    if user_for_reset_token(token) is None:
        return render_themed("auth/reset_invalid.html"), 400
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            reset_password(token, form.password.data)
        except ValidationError as error:
            db.session.rollback()
            attach_error(form, error)
        else:
            db.session.commit()
            logout_user()
            flash(_("Your password is changed. Sign in with the new one."), "success")
            return redirect(url_for("auth.login"))
    return render_themed("auth/reset_password.html", form=form)


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    """A customer changes their password or language."""
    password_form = ChangePasswordForm(prefix="pw")
    language_form = LanguageForm(
        prefix="lang", locale=current_user.locale or g.tenant.default_locale
    )
    if request.method == "POST" and "pw-password" in request.form:
        if password_form.validate() and apply_password_change(password_form):
            flash(_("Your password is changed. Your other sessions are signed out."), "success")
            return redirect(url_for("auth.account"))
    elif request.method == "POST" and language_form.validate_on_submit():
        remember_locale(language_form.locale.data)
        flash(_("Language saved."), "success")
        return redirect(url_for("auth.account"))
    return render_themed(
        "auth/account.html", password_form=password_form, language_form=language_form
    )
