"""A person's action from a page, run the one way every blueprint runs it: committed when it
succeeds; rolled back, with its reason flashed, when the domain refuses it; a 404 when what it
acts on is not theirs to see."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import abort, flash

from app.errors import NotFound
from app.extensions import db

T = TypeVar("T")


def committed(action: Callable[[], T], refused: type[Exception]) -> T | None:
    """The action's result once committed, or None after flashing why it was `refused`."""
    try:
        result = action()
    except refused as error:
        db.session.rollback()
        flash(str(error), "error")
        return None
    except NotFound:
        db.session.rollback()
        abort(404)
    db.session.commit()
    return result
