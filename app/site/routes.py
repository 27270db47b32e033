from flask import abort, current_app, g, redirect, render_template, request, send_file, url_for

from app.i18n import remember_locale
from app.navigation import safe_next
from app.site import bp
from app.storefront.routes import storefront_home
from tenants.theming import theme_static_file

ONE_YEAR = 365 * 24 * 3600


@bp.get("/")
def home():
    """A tenant's storefront on its host; the platform's site on the bare domain."""
    if g.tenant is not None:
        return storefront_home()
    return render_template("platform/home.html")


@bp.get("/theme-static/<theme>/<path:filename>")
def theme_static(theme: str, filename: str):
    """A theme's static file, falling back to base's; versioned URLs are cached for a year."""
    file = theme_static_file(current_app.extensions["pasok_themes"], theme, filename)
    if file is None:
        abort(404)
    versioned = "v" in request.args
    response = send_file(file, max_age=ONE_YEAR if versioned else 3600, conditional=True)
    if versioned:
        response.cache_control.immutable = True
    return response


@bp.route("/language", methods=["GET", "POST"])
def set_language():
    """Remember this browser's language; a signed-in customer's POST also saves it to the
    account. A GET changes nothing but this browser's display language, so it needs no token."""
    locale = request.values.get("locale", "")
    remember_locale(locale, save_to_account=request.method == "POST")
    return redirect(safe_next(url_for("site.home")))
