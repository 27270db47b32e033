"""Secrets at rest (provider API keys, gateway keys): Fernet tokens under `PASOK_SECRET_KEYS`.

`PASOK_SECRET_KEYS` lists Fernet keys, newest first. Everything is encrypted with the newest
and decrypted with any of them, so a new key can be put in front and `pasok secrets rotate`
re-encrypts what is stored; the old key can go once that has run. In development, with no keys
configured, a key is derived from SECRET_KEY (production refuses to start without real keys).
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator


class SecretKeyError(RuntimeError):
    """A stored secret cannot be decrypted with any configured key."""


def _fernet() -> MultiFernet:
    cached = current_app.extensions.get("pasok_fernet")
    if cached is None:
        cached = current_app.extensions["pasok_fernet"] = build_fernet(
            current_app.config["PASOK_SECRET_KEYS"], current_app.config["SECRET_KEY"]
        )
    return cached


def build_fernet(secret_keys: str, fallback_secret: str) -> MultiFernet:
    keys = [k.strip() for k in secret_keys.split(",") if k.strip()]
    if not keys:
        digest = hashlib.sha256(b"pasok-secrets:" + fallback_secret.encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except ValueError as exc:
        raise SecretKeyError(
            f"PASOK_SECRET_KEYS holds a key that is not a Fernet key: {exc}"
        ) from None


def encrypt_secret(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt_secret(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretKeyError("a stored secret does not decrypt with PASOK_SECRET_KEYS") from None


def rotate_secret(token: str) -> str:
    """The same secret, encrypted with the newest key."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretKeyError("a stored secret does not decrypt with PASOK_SECRET_KEYS") from None


class EncryptedText(TypeDecorator):
    """A column whose value is stored as a Fernet token and read back in clear."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect) -> str | None:
        return None if value is None else encrypt_secret(value)

    def process_result_value(self, value: str | None, dialect) -> str | None:
        return None if value is None else decrypt_secret(value)


def mask(secret: str) -> str:
    """How a stored secret is shown again: never in full."""
    return "••••" + secret[-4:] if len(secret) > 8 else "••••"


def rotate_all_secrets(metadata) -> int:
    """Re-encrypt every stored secret with the newest key; returns how many were rewritten."""
    from sqlalchemy import select, type_coerce, update

    from app.extensions import db

    count = 0
    for table in metadata.sorted_tables:
        for column in table.columns:
            if not isinstance(column.type, EncryptedText):
                continue
            key = next(iter(table.primary_key.columns))
            raw = type_coerce(column, Text)  # the stored token, not decrypted
            for row_id, token in db.session.execute(select(key, raw).where(column.is_not(None))):
                fresh = rotate_secret(token)
                if fresh != token:
                    db.session.execute(
                        update(table)
                        .where(key == row_id)
                        .values({column: type_coerce(fresh, Text)})
                    )
                    count += 1
    return count
