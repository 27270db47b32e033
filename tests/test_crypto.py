"""Secrets at rest: Fernet tokens under PASOK_SECRET_KEYS, rotatable."""

import pytest
from cryptography.fernet import Fernet

from app.crypto import SecretKeyError, decrypt_secret, encrypt_secret, mask, rotate_secret


def test_round_trip_and_the_clear_text_is_not_in_the_token(app):
    with app.app_context():
        token = encrypt_secret("sk_live_abcdef123456")
        assert "abcdef" not in token
        assert decrypt_secret(token) == "sk_live_abcdef123456"


def test_rotation_to_a_new_key(make_app):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = make_app(PASOK_SECRET_KEYS=old)
    with before.app_context():
        token = encrypt_secret("provider-key-1")
    during = make_app(PASOK_SECRET_KEYS=f"{new},{old}")
    with during.app_context():
        assert decrypt_secret(token) == "provider-key-1"  # old tokens still read
        rotated = rotate_secret(token)
    after = make_app(PASOK_SECRET_KEYS=new)
    with after.app_context():
        assert decrypt_secret(rotated) == "provider-key-1"
        with pytest.raises(SecretKeyError):
            decrypt_secret(token)  # the old key is gone


def test_a_bad_key_is_a_clear_error(make_app):
    app = make_app(PASOK_SECRET_KEYS="not-a-fernet-key")
    with app.app_context(), pytest.raises(SecretKeyError, match="not a Fernet key"):
        encrypt_secret("x")


@pytest.mark.parametrize("secret, shown", [("sk_live_abcdef123456", "••••3456"), ("short", "••••")])
def test_secrets_are_never_shown_in_full(secret, shown):
    assert mask(secret) == shown


def test_rotate_secrets_re_encrypts_every_stored_key(make_app, app):
    from sqlalchemy import text

    from app.extensions import db
    from app.providers.services import add_provider
    from tenants.context import across_tenants

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = make_app(PASOK_SECRET_KEYS=old)
    with before.app_context(), across_tenants():
        add_provider("p1", "http://p1.example/api/v2", "key-one", actor="test")
        db.session.commit()
        token = db.session.execute(text("SELECT api_key FROM providers")).scalar_one()
    during = make_app(PASOK_SECRET_KEYS=f"{new},{old}")
    result = during.test_cli_runner().invoke(args=["rotate-secrets"])
    assert result.exit_code == 0 and "1 secrets re-encrypted" in result.output
    after = make_app(PASOK_SECRET_KEYS=new)
    with after.app_context():
        rotated = db.session.execute(text("SELECT api_key FROM providers")).scalar_one()
        assert rotated != token and "key-one" not in rotated
        assert decrypt_secret(rotated) == "key-one"
