"""Work a transaction leaves for after its commit: emails and other notices that must go out
only once the change they announce is stored, and must never undo it.

`after_commit(callback, *args)` notes a call on the session; once the outermost transaction
commits, each noted call runs once (the same call noted twice runs once), in the order first
noted. If the transaction rolls back, nothing runs. A call that raises is logged: the commit
it follows has happened and stays.

The session cannot run SQL while its commit event runs, so a callback reads through a session
of its own (`Session(db.engine)`), and should re-read what it announces: a SAVEPOINT rolled
back after the call was noted leaves the note in place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from app.extensions import db

log = logging.getLogger(__name__)

CALLS_AFTER_COMMIT = "pasok_calls_after_commit"


def after_commit(callback: Callable[..., object], *args: Hashable) -> None:
    """Run `callback(*args)` once the current transaction of `db.session` commits; never if
    it rolls back."""
    # A dict keeps the order the calls were noted in and drops repeats.
    db.session.info.setdefault(CALLS_AFTER_COMMIT, {})[(callback, args)] = None


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    # SQLAlchemy reports a SAVEPOINT's release as a commit too: wait for the real one.
    if session.in_nested_transaction():
        return
    calls = session.info.pop(CALLS_AFTER_COMMIT, None)
    for callback, args in calls or ():
        try:
            callback(*args)
        except Exception:
            # The transaction is committed; what follows it must not turn it into a 500.
            log.exception("%s%r after commit failed", callback.__qualname__, args)


@event.listens_for(Session, "after_transaction_end")
def _forget_uncommitted_calls(session: Session, transaction: SessionTransaction) -> None:
    # Only the outermost transaction's end drops the notes (after a commit they have run); a
    # SAVEPOINT rolled back inside it leaves them, and each callback re-reads what is stored.
    if transaction.parent is None:
        session.info.pop(CALLS_AFTER_COMMIT, None)
