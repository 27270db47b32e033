"""Error pages: themed on a tenant's host, plain elsewhere. Never a traceback."""

from __future__ import annotations

from flask import Flask, g, render_template
from flask_wtf.csrf import CSRFError

from tenants.web import render_themed


def _page(template: str, status: int):
    if g.get("tenant") is not None:
        return render_themed(template), status
    return render_template(template), status


def register_error_pages(app: Flask) -> None:
    @app.errorhandler(404)
    def not_found(error):
        return _page("errors/404.html", 404)

    @app.errorhandler(403)
    def forbidden(error):
        return _page("errors/403.html", 403)

    @app.errorhandler(CSRFError)
    def form_expired(error):
        return _page("errors/400.html", 400)

    @app.errorhandler(405)
    def method_not_allowed(error):
        return _page("errors/404.html", 405)

    @app.errorhandler(429)
    def too_many_requests(error):
        return _page("errors/429.html", 429)

    @app.errorhandler(500)
    def server_error(error):
        return render_template("errors/500.html"), 500
