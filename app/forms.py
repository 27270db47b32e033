"""Validators with messages in the user's language (WTForms ships no Indonesian ones)."""

from flask_babel import lazy_gettext as _l
from wtforms.validators import DataRequired, EqualTo, Length


def required() -> DataRequired:
    return DataRequired(message=_l("This field is required."))


def at_most(n: int) -> Length:
    return Length(max=n, message=_l("Use at most %(n)s characters.", n=n))


def same_as(field: str) -> EqualTo:
    return EqualTo(field, message=_l("Passwords do not match"))
