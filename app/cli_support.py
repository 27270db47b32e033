"""What every `pasok` command shares."""

from __future__ import annotations

import functools

import click

from app.errors import PasokError
from app.extensions import db
from tenants.context import across_tenants


def operator_command(func):
    """Run a command across tenants, commit on success, and turn domain errors into one line."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with across_tenants():
            try:
                result = func(*args, **kwargs)
                db.session.commit()
                return result
            except PasokError as error:
                db.session.rollback()
                raise click.ClickException(str(error)) from None

    return wrapper
