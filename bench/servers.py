"""What the benchmarks serve: Pasok, plus a bare Flask app at `/__bare`, from one WSGI callable.

`gunicorn bench.servers:app` runs both in the same workers, so the bare endpoint is a baseline
measured on the very same server, configuration and machine load as the pages under test.
"""

from __future__ import annotations

from flask import Flask

from app import create_app

BARE_PATH = "/__bare"


def create_bare_app() -> Flask:
    """The smallest useful Flask app: one route, a short plain-text answer."""
    bare = Flask("bare")

    @bare.get(BARE_PATH)
    def hello():
        return "ok", 200, {"Content-Type": "text/plain; charset=utf-8"}

    return bare


pasok = create_app()
bare = create_bare_app()


def app(environ, start_response):
    """`/__bare` goes to the bare app, everything else to Pasok."""
    target = bare if environ.get("PATH_INFO") == BARE_PATH else pasok
    return target(environ, start_response)
