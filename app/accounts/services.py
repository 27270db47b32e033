"""Accounts: creating users, passwords, logins and password resets."""

from __future__ import annotations

import hashlib

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from app.accounts.models import KINDS, OPERATOR, STAFF, STAFF_ROLES, User
from app.errors import ValidationError
from app.extensions import db
from app.types import utcnow
from tenants.context import current_scope
from tenants.scoping import belongs_to_current_scope

MIN_PASSWORD_LENGTH = 8
COMMON_PASSWORDS = frozenset(
    """
    password password1 password123 12345678 123456789 1234567890 qwerty123 qwertyuiop
    11111111 00000000 iloveyou admin123 letmein1 welcome1 abc12345 sayang123 bismillah
    indonesia rahasia123 passw0rd p@ssw0rd
    """.split()
)
# A hash to compare against when the email is unknown, so a login takes as long either way.
_UNKNOWN_USER_HASH = generate_password_hash("pasok-unknown-user")


def normalize_email(email: str) -> str:
    """Validate and case-fold an email address."""
    try:
        result = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError:
        raise ValidationError(
            _l("Enter a valid email address, like name@example.com"), "email"
        ) from None
    return result.normalized.casefold()


def check_password_strength(password: str, email: str = "") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            _l("Password must be at least %(n)s characters", n=MIN_PASSWORD_LENGTH), "password"
        )
    if len(password) > 200:
        raise ValidationError(_l("Password must be at most 200 characters"), "password")
    lowered = password.casefold()
    if lowered in COMMON_PASSWORDS or len(set(password)) < 4:
        raise ValidationError(_l("Password is too easy to guess"), "password")
    if email and lowered == email.casefold().split("@")[0]:
        raise ValidationError(_l("Password must not be your email name"), "password")


def find_user(kind: str, email: str) -> User | None:
    """The user of `kind` with `email` in the current scope (tenant, or platform for operators)."""
    return db.session.scalar(
        select(User).where(User.kind == kind, User.email == email.strip().casefold())
    )


def create_user(
    *,
    kind: str,
    tenant_id: int | None,
    email: str,
    password: str,
    role: str | None = None,
    name: str = "",
    locale: str | None = None,
) -> User:
    if kind not in KINDS:
        raise ValidationError(f"Unknown user kind '{kind}'")
    if (kind == OPERATOR) != (tenant_id is None):
        raise ValidationError("Operators have no tenant; staff and customers need one")
    if kind == STAFF and role not in STAFF_ROLES:
        raise ValidationError(f"Staff role must be one of {', '.join(STAFF_ROLES)}", "role")
    if kind != STAFF:
        role = None
    email = normalize_email(email)
    check_password_strength(password, email)
    # Explicit tenant filter: the caller may be working across tenants (the CLI, the console).
    taken = db.session.scalar(
        select(User.id).where(User.kind == kind, User.email == email, User.tenant_id == tenant_id)
        if tenant_id is not None
        else select(User.id).where(User.email == email, User.tenant_id.is_(None))
    )
    if taken is not None:
        raise ValidationError(
            _l("An account with email %(email)s already exists", email=email), "email"
        )
    user = User(
        tenant_id=tenant_id,
        kind=kind,
        role=role,
        email=email,
        name=name.strip()[:120],
        password_hash=generate_password_hash(password),
        locale=locale,
    )
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(kind: str, email: str, password: str) -> User | None:
    """The user if the email and password match an enabled account of `kind`, else None."""
    user = find_user(kind, email)
    if user is None or not belongs_to_current_scope(user):
        check_password_hash(_UNKNOWN_USER_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.is_enabled:
        return None
    user.last_login_at = utcnow()
    return user


def set_password(user: User, new_password: str) -> None:
    """Set a new password and end all the user's sessions (the caller re-logs the current one)."""
    check_password_strength(new_password, user.email)
    user.password_hash = generate_password_hash(new_password)
    user.password_changed_at = utcnow()
    user.session_epoch += 1


def change_password(user: User, current_password: str, new_password: str) -> None:
    if not check_password_hash(user.password_hash, current_password):
        raise ValidationError(_l("Current password is wrong"), "current_password")
    if current_password == new_password:
        raise ValidationError(_l("The new password must differ from the current one"), "password")
    set_password(user, new_password)


def load_session_user(session_id: str, kind: str) -> User | None:
    """The user behind a session id (`<user id>:<session epoch>`), if still valid here."""
    if current_scope() is None:
        return None
    user_id, _, epoch = session_id.partition(":")
    if not (user_id.isdigit() and epoch.isdigit()):
        return None
    user = db.session.scalar(select(User).where(User.id == int(user_id)))
    # Explicit checks beside the central scoping: right tenant, right kind, session not ended.
    if user is None or user.kind != kind or user.session_epoch != int(epoch):
        return None
    if not belongs_to_current_scope(user):
        return None
    return user if user.is_enabled else None


# Password reset tokens: signed and expiring; single use because they carry a fingerprint of
# the password hash and session epoch, both of which change when the password is reset.


def _reset_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="pasok-password-reset")


def _fingerprint(user: User) -> str:
    material = f"{user.password_hash}:{user.session_epoch}".encode()
    return hashlib.sha256(material).hexdigest()[:16]


def make_reset_token(user: User) -> str:
    return _reset_serializer().dumps(
        {"u": user.id, "t": user.tenant_id, "k": user.kind, "f": _fingerprint(user)}
    )


def user_for_reset_token(token: str) -> User | None:
    max_age = current_app.config["PASOK_PASSWORD_RESET_MAX_AGE"]
    try:
        data = _reset_serializer().loads(token, max_age=max_age)
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict):
        return None
    user = db.session.scalar(select(User).where(User.id == data.get("u")))
    if (
        user is None
        or not belongs_to_current_scope(user)
        or user.kind != data.get("k")
        or user.tenant_id != data.get("t")
        or _fingerprint(user) != data.get("f")
    ):
        return None
    return user


def reset_password(token: str, new_password: str) -> User:
    user = user_for_reset_token(token)
    if user is None:
        raise ValidationError(_l("This reset link is invalid, expired or already used"), "token")
    set_password(user, new_password)
    return user
