"""Extension objects, initialised in the factory."""

from __future__ import annotations

import redis
from flask import current_app, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def rate_limit_key() -> str:
    """Rate limits are per tenant (or the platform) and per client address."""
    from tenants.context import current_tenant_id

    return f"{current_tenant_id() or 'platform'}:{request.remote_addr or '-'}"


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
babel = Babel()
csrf = CSRFProtect()
limiter = Limiter(key_func=rate_limit_key, default_limits=[], headers_enabled=False)


@limiter.request_filter
def only_form_posts_are_limited() -> bool:
    """Every limit here is on a form post or on the API (`/api/v2`, any method); other
    requests skip the limiter's work entirely."""
    return request.method != "POST" and request.blueprint != "api"


def connect_redis(url: str) -> redis.Redis:
    """A Redis client; `fakeredis://` gives an in-process server for tests without Redis."""
    if url.startswith("fakeredis://"):
        import fakeredis

        return fakeredis.FakeRedis()
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def get_redis() -> redis.Redis:
    return current_app.extensions["pasok_redis"]
