from flask_login import login_required

from app.storefront import bp
from tenants.pagecache import cached_for_visitors
from tenants.web import render_themed


@cached_for_visitors
def storefront_home():
    """The tenant's home page (served at `/` by the site blueprint)."""
    return render_themed("storefront/home.html")


@bp.get("/dashboard")
@login_required
def dashboard():
    """The customer's area."""
    return render_themed("storefront/dashboard.html")
