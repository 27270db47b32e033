"""`/healthz` and `/readyz` on any host, and readiness when a dependency is down."""

import socket

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("host", ["localhost", "acme.localhost", "unknown.example.org", "10.0.0.1"])
def test_healthz_answers_on_any_host(app, browser_for, host):
    response = browser_for(host).get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_reports_database_and_redis(app, browser_for):
    response = browser_for("nowhere.example").get("/readyz")
    assert response.status_code == 200
    assert response.json["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_is_503_when_redis_is_down(make_app, app, browser_for):
    down = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    response = browser_for("localhost", down.test_client()).get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["database"] == "ok"
    assert response.json["checks"]["redis"].startswith("error")
    # The process itself is fine.
    assert browser_for("localhost", down.test_client()).get("/healthz").status_code == 200


def test_readyz_is_503_when_the_database_is_unreachable(make_app, app, browser_for, tmp_path):
    down = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/missing/dir/db.sqlite3")
    response = browser_for("any.example", down.test_client()).get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["database"].startswith("error")
