"""Property tests: whatever a client sends to `/api/v2` — random parameters by form, JSON or
query string, random bodies — the answer is HTTP 200 JSON, never a 500 and never a page."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.api.routes import ACTIONS
from app.catalog.order_types import ORDER_TYPES
from tests.api_support import ACME, api_shop, new_key
from tests.ordering import LINK

PARAMS = sorted(
    {p for t in ORDER_TYPES.values() for p in t.params}
    | {"service", "ref", "order", "orders", "refill", "refills"}
)
CHECKS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Text a form can carry (no lone surrogates), control characters and NUL included.
TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)
NUMBERISH = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.sampled_from(["", "0", "1", "1.5", "1e3", " 7 ", "1,2,3", "999999999999", "-1", "0x10"]),
)
VALUE = st.one_of(TEXT, NUMBERISH, st.just(LINK))
JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), TEXT, NUMBERISH),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=8,
)
ACTION = st.one_of(st.sampled_from([*ACTIONS, "", "ADD", " status "]), TEXT)


@pytest.fixture
def setting(app, make):
    shop = api_shop(app, make)
    return app.test_client(), shop, new_key(app, shop["acme"], shop["alice"])


def params_for(shop, key):
    names = st.one_of(st.sampled_from(PARAMS), TEXT.filter(lambda n: n not in ("key", "action")))
    service = st.sampled_from([str(shop[s]) for s in ("likes", "comments", "subs", "package")])
    return st.fixed_dictionaries(
        {"key": st.one_of(st.just(key), TEXT), "action": ACTION},
        optional={"service": st.one_of(service, VALUE)},
    ).flatmap(
        lambda base: st.dictionaries(names, VALUE, max_size=6).map(lambda more: {**more, **base})
    )


def assert_json_answer(response) -> None:
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "application/json", response.data[:300]
    reply = response.get_json()
    assert isinstance(reply, dict | list)
    if isinstance(reply, dict) and "error" in reply:
        assert isinstance(reply["error"], str) and reply["error"]


def test_random_form_posts_never_fail(setting):
    client, shop, key = setting

    @CHECKS
    @given(params=params_for(shop, key))
    def check(params):
        assert_json_answer(client.post("/api/v2", data=params, base_url=f"http://{ACME}"))

    check()


def test_random_query_strings_never_fail(setting):
    client, shop, key = setting

    @CHECKS
    @given(params=params_for(shop, key))
    def check(params):
        response = client.get("/api/v2", query_string=params, base_url=f"http://{ACME}")
        assert_json_answer(response)

    check()


def test_random_json_objects_never_fail(setting):
    client, shop, key = setting

    @CHECKS
    @given(
        base=params_for(shop, key),
        extra=st.dictionaries(st.sampled_from(PARAMS), JSON_VALUE, max_size=4),
    )
    def check(base, extra):
        body = {**base, **extra}
        assert_json_answer(client.post("/api/v2", json=body, base_url=f"http://{ACME}"))

    check()


def test_random_bodies_never_fail(setting):
    client, _, key = setting

    @CHECKS
    @given(
        body=st.one_of(st.binary(max_size=200), TEXT.map(str.encode)),
        content_type=st.sampled_from(
            ["application/json", "application/x-www-form-urlencoded", "text/plain", "",
             "multipart/form-data; boundary=x"]
        ),
    )  # fmt: skip
    def check(body, content_type):
        response = client.post(
            "/api/v2",
            data=body,
            content_type=content_type or None,
            headers={"X-Api-Key": key},
            base_url=f"http://{ACME}",
        )
        assert_json_answer(response)

    check()


@pytest.mark.parametrize(
    "body",
    [
        '{"action": "add", "service": 1, "link": "https://a.example/\\ud800", "quantity": 100}',
        '{"action": "status", "order": "\\u0000"}',
        '{"action": "add", "service": 1e400, "quantity": 1e400}',
        '{"action": "status", "orders": [[1, 2], {"a": 1}, 3]}',
        "[" * 5000 + "]" * 5000,
    ],
)
def test_awkward_json_never_fails(setting, body):
    client, _, key = setting
    response = client.post(
        "/api/v2",
        data=body.encode(),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
        base_url=f"http://{ACME}",
    )
    assert_json_answer(response)
    assert json.loads(response.data) is not None
