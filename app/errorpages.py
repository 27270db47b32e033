"""Error pages: themed on a tenant's host, plain elsewhere. Never a traceback."""

from __future__ import annotations

from flask import Flask, g, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import BadRequest

from tenants.web import render_themed


def _page(template: str, status: int, **context):
    if g.get("tenant") is not None:
        return render_themed(template, **context), status
    return render_template(template, **context), status


class UnstorableText(BadRequest):
    """A parameter holds what no field may: a NUL byte (PostgreSQL cannot store one) or a lone
    surrogate (not UTF-8)."""


def refuse_unstorable_text() -> None:
    """Before any view: such a parameter is a clear 400, never a database error. The API answers
    the same in its own format."""
    if request.blueprint == "api":
        return
    for name, value in (*request.args.items(multi=True), *request.form.items(multi=True)):
        if not (_storable(name) and _storable(value)):
            raise UnstorableText()


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def register_error_pages(app: Flask) -> None:
    app.before_request(refuse_unstorable_text)

    @app.errorhandler(UnstorableText)
    def unstorable_text(error):
        return _page(
            "errors/400.html",
            400,
            title=_("Some of what was sent cannot be read"),
            detail=_(
                "Please check what you typed (it holds a character that is not text) and try again."
            ),
        )

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
