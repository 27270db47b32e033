"""The operator console's supply pages: providers, imports, the catalog, wholesale prices and
exchange rates, driven over HTTP against a live sandbox provider."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import requests
from sqlalchemy import event, select, text
from werkzeug.serving import make_server

from app.audit.models import AuditEntry
from app.catalog.models import PUBLISHED, UNLISTED, CatalogChange, Category, Service, ServiceRoute
from app.catalog.sync import sync_provider
from app.extensions import db
from app.providers.client import UpstreamService
from app.providers.models import Provider
from app.sandbox import SandboxOptions, create_sandbox_app
from tenants.context import across_tenants
from tests.conftest import sign_in

KEY = "sandbox-key"
DASH = "\N{EN DASH}"  # between the first and last number of a range


@dataclass
class LiveSandbox:
    """A sandbox provider served over HTTP on 127.0.0.1, as an upstream is."""

    server: object
    thread: threading.Thread
    stopped: bool = False

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/v2"

    def admin(self, path: str, body: dict) -> dict:
        response = requests.post(f"{self.base}/__sandbox/{path}", json=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=10)


@pytest.fixture
def make_sandbox():
    started: list[LiveSandbox] = []

    def factory(**options) -> LiveSandbox:
        app = create_sandbox_app(SandboxOptions(**{"services": 30, **options}))
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, name="sandbox", daemon=True)
        thread.start()
        started.append(LiveSandbox(server, thread))
        return started[-1]

    yield factory
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def sandbox(make_sandbox) -> LiveSandbox:
    return make_sandbox()


@pytest.fixture
def console(make, browser_for):
    """A browser on the platform domain, signed in as an operator."""
    make.operator("op@example.com")
    client = browser_for("localhost")
    assert sign_in(client, "/console/login", "op@example.com").status_code == 302
    return client


def provider_form(sandbox: LiveSandbox | None = None, **changes) -> dict:
    data = {
        "name": "sandbox",
        "api_url": sandbox.api_url if sandbox else "http://127.0.0.1:9/api/v2",
        "api_key": KEY,
        "currency": "USD",
        "honours_ref": "y",
        "timeout_seconds": "5",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def add_provider(console, sandbox, **changes) -> int:
    response = console.post("/console/providers", data=provider_form(sandbox, **changes))
    assert response.status_code == 302, response.text
    return int(response.headers["Location"].rsplit("/", 1)[1])


def import_services(console, provider_id: int, *, publish: bool = False) -> str:
    """Import, and return the report page's path."""
    data = {"publish": "y"} if publish else {}
    response = console.post(f"/console/providers/{provider_id}/import", data=data)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert f"/console/providers/{provider_id}/imports/" in location
    return location


def flashed(console, path: str) -> str:
    """The alerts shown on the next page view."""
    page = console.get(path).text
    return " ".join(re.findall(r'<div class="alert[^"]*" role="[a-z]+">(.*?)</div>', page, re.S))


def rows(app, query):
    with app.app_context(), across_tenants():
        return db.session.execute(query).all()


# Providers


def test_an_operator_adds_a_provider_and_sees_it_listed(app, console, sandbox):
    provider_id = add_provider(console, sandbox)
    page = console.get("/console/providers").text
    assert "sandbox" in page and sandbox.api_url in page
    assert "Not checked yet" in page and "Never" in page
    detail = console.get(f"/console/providers/{provider_id}")
    assert detail.status_code == 200
    assert "Test connection" in detail.text and "Import services" in detail.text
    [(currency, honours_ref, timeout)] = rows(
        app, select(Provider.currency, Provider.honours_ref, Provider.timeout_seconds)
    )
    assert (currency, honours_ref, timeout) == ("USD", True, 5.0)


@pytest.mark.parametrize(
    "changes, error",
    [
        ({"api_url": "ftp://example.com/api"}, "API URL must be an http:// or https:// address"),
        ({"api_url": "not a url"}, "API URL must be an http:// or https:// address"),
        ({"api_key": ""}, "This field is required."),
        ({"api_key": "   "}, "This field is required."),
        ({"name": "has spaces"}, "Provider name must be 1-64 letters"),
        ({"name": ""}, "This field is required."),
        ({"timeout_seconds": "abc"}, "is not a number"),
        ({"timeout_seconds": "0"}, "Timeout must be 1-120 seconds"),
        ({"timeout_seconds": "1e9"}, "is not a number"),
        ({"currency": "EUR"}, "Unknown currency"),
    ],
)
def test_bad_provider_input_is_a_form_error(app, console, changes, error):
    response = console.post("/console/providers", data=provider_form(None, **changes))
    assert response.status_code == 200
    assert error in response.text
    assert rows(app, select(Provider.id)) == []


def test_a_duplicate_provider_name_is_refused(app, console, sandbox):
    add_provider(console, sandbox)
    response = console.post("/console/providers", data=provider_form(sandbox))
    assert response.status_code == 200
    assert "A provider named &#39;sandbox&#39; already exists" in response.text
    assert len(rows(app, select(Provider.id))) == 1


def test_the_api_key_is_never_shown_in_full_nor_stored_in_clear(app, console, sandbox):
    secret = "sk-live-1234567890abcdef"
    provider_id = add_provider(console, sandbox, api_key=secret)
    for path in ("/console/providers", f"/console/providers/{provider_id}"):
        assert secret not in console.get(path).text
    assert "••••cdef" in console.get(f"/console/providers/{provider_id}").text
    # An edit form with an error does not echo the new key either.
    response = console.post(
        f"/console/providers/{provider_id}",
        data={"api_url": "nope", "api_key": "sk-new-secret-999", "currency": "USD"},
    )
    assert "sk-new-secret-999" not in response.text
    with app.app_context():
        stored = db.session.execute(text("SELECT api_key FROM providers")).scalar_one()
    assert secret not in stored and "cdef" not in stored


def test_editing_a_provider_with_an_empty_key_keeps_the_key(app, console, sandbox):
    provider_id = add_provider(console, sandbox)
    data = {"api_url": sandbox.api_url, "api_key": "", "currency": "USD", "timeout_seconds": "7"}
    response = console.post(f"/console/providers/{provider_id}", data=data)
    assert response.status_code == 302
    with app.app_context():
        provider = db.session.get(Provider, provider_id)
        assert (provider.api_key, provider.timeout_seconds) == (KEY, 7.0)
        # Unticked boxes: not enabled, does not honour ref.
        assert (provider.enabled, provider.honours_ref) == (False, False)
    console.post(f"/console/providers/{provider_id}", data={**data, "api_key": "new-key-77"})
    with app.app_context():
        assert db.session.get(Provider, provider_id).api_key == "new-key-77"


def test_a_provider_is_disabled_and_enabled_again(app, console, sandbox):
    provider_id = add_provider(console, sandbox)
    console.post(f"/console/providers/{provider_id}/toggle")
    assert rows(app, select(Provider.enabled)) == [(False,)]
    assert "disabled" in flashed(console, f"/console/providers/{provider_id}")
    console.post(f"/console/providers/{provider_id}/toggle")
    assert rows(app, select(Provider.enabled)) == [(True,)]


def test_an_unknown_provider_is_a_404(console):
    assert console.get("/console/providers/999").status_code == 404
    assert console.post("/console/providers/999/check").status_code == 404
    assert console.post("/console/providers/999/import").status_code == 404


# Testing the connection


def test_the_connection_test_shows_the_upstream_balance(app, console, sandbox):
    provider_id = add_provider(console, sandbox)
    sandbox.admin("balance", {"balance": "123.45"})
    response = console.post(f"/console/providers/{provider_id}/check")
    assert response.status_code == 302
    assert "Connected to sandbox. Balance: 123.45000 USD." in flashed(
        console, f"/console/providers/{provider_id}"
    )
    assert rows(app, select(Provider.last_balance)) == [(Decimal("123.45"),)]
    assert "123.45000 USD" in console.get("/console/providers").text


def test_the_connection_test_when_the_provider_is_down(app, console, sandbox):
    provider_id = add_provider(console, sandbox)
    sandbox.stop()
    response = console.post(f"/console/providers/{provider_id}/check")
    assert response.status_code == 302
    assert "sandbox did not answer" in flashed(console, f"/console/providers/{provider_id}")
    assert rows(app, select(Provider.last_balance)) == [(None,)]


def test_the_connection_test_when_the_provider_answers_garbage(console, sandbox):
    provider_id = add_provider(console, sandbox)
    sandbox.admin("settings", {"faults": {"html": 1.0}})
    assert console.post(f"/console/providers/{provider_id}/check").status_code == 302
    message = flashed(console, f"/console/providers/{provider_id}")
    assert "sandbox did not answer" in message


def test_the_connection_test_when_the_provider_is_slow(console, sandbox):
    provider_id = add_provider(console, sandbox, timeout_seconds="1")
    sandbox.admin("settings", {"latency_ms": 3000})
    started = time.monotonic()
    assert console.post(f"/console/providers/{provider_id}/check").status_code == 302
    assert time.monotonic() - started < 3
    assert "did not answer" in flashed(console, f"/console/providers/{provider_id}")


def test_a_wrong_key_is_reported(console, sandbox):
    provider_id = add_provider(console, sandbox, api_key="wrong-key")
    console.post(f"/console/providers/{provider_id}/check")
    assert "did not answer: Invalid API key" in flashed(
        console, f"/console/providers/{provider_id}"
    )


@pytest.fixture
def odd_upstream():
    """An upstream answering whatever JSON a test sets, per action: `odd_upstream(replies)`
    returns its API URL."""
    servers = []

    def factory(replies: dict) -> str:
        def app(environ, start_response):
            form = parse_qs(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
            action = form.get(b"action", [b""])[0].decode()
            body = json.dumps(replies.get(action, {"error": "Incorrect request"})).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]

        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, name="odd-upstream", daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}/api/v2"

    yield factory
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_balance_too_large_to_keep_is_a_message(app, console, odd_upstream):
    url = odd_upstream({"balance": {"balance": "1e40", "currency": "USD"}})
    provider_id = add_provider(console, None, api_url=url)
    assert console.post(f"/console/providers/{provider_id}/check").status_code == 302
    assert "answered with a balance Pasok cannot read" in flashed(
        console, f"/console/providers/{provider_id}"
    )
    assert rows(app, select(Provider.last_balance)) == [(None,)]


def test_a_listing_the_catalog_cannot_keep_imports_nothing(app, console, odd_upstream):
    service = {"service": 1, "name": "Odd", "type": "Default", "category": "Odd", "min": "10",
               "max": "100", "rate": "1e30"}  # fmt: skip
    url = odd_upstream({"services": [service, {**service, "service": 2, "rate": "0.5"}]})
    provider_id = add_provider(console, None, api_url=url)
    response = console.post(f"/console/providers/{provider_id}/import", data={})
    assert response.status_code == 302
    message = flashed(console, f"/console/providers/{provider_id}")
    assert "listed services Pasok cannot import" in message
    assert rows(app, select(Service.id)) == []


# Importing services


def test_an_import_adds_unlisted_services_and_reports_them(app, console, sandbox):
    provider_id = add_provider(console, sandbox)
    report = console.get(import_services(console, provider_id))
    assert report.status_code == 200
    assert "Import done: 30 services listed; 30 added" in report.text
    assert report.text.count('class="mono">#') == 30
    assert rows(app, select(Service.status).distinct()) == [(UNLISTED,)]
    assert "Recent imports" in console.get(f"/console/providers/{provider_id}").text


def test_an_import_with_publish_publishes_new_services(app, console, sandbox):
    provider_id = add_provider(console, sandbox)
    import_services(console, provider_id, publish=True)
    assert rows(app, select(Service.status).distinct()) == [(PUBLISHED,)]
    [(_action, details)] = rows(
        app,
        select(AuditEntry.action, AuditEntry.details).where(AuditEntry.action == "catalog.sync"),
    )
    assert details["publish"] is True and details["added"] == 30


def test_a_failed_import_is_a_message_not_an_error_page(app, console, sandbox):
    provider_id = add_provider(console, sandbox)
    sandbox.admin("settings", {"faults": {"5xx": 1.0}})
    response = console.post(f"/console/providers/{provider_id}/import", data={})
    assert response.status_code == 302
    assert "did not list its services" in flashed(console, f"/console/providers/{provider_id}")
    assert rows(app, select(Service.id)) == []


def test_a_reimport_reports_each_reprice_removal_and_addition(app, console, sandbox):
    provider_id = add_provider(console, sandbox)
    import_services(console, provider_id, publish=True)
    [(old_rate,)] = rows(app, text("SELECT rate FROM provider_services WHERE external_id = '3'"))
    sandbox.admin("catalog", {"reprice": {"3": "0.55"}, "remove": [5], "add": 2})

    location = import_services(console, provider_id)
    report = console.get(location).text
    assert "1 repriced" in report and "1 removed" in report and "2 added" in report
    repriced = section(report, "repriced")
    assert "#3" in repriced and "<ins>0.55</ins>" in repriced
    assert f"<del>{Decimal(old_rate) / 10**6:f}".rstrip("0") in repriced
    assert "#5" in section(report, "removed")
    added = section(report, "added")
    assert "#31" in added and "#32" in added
    # The platform service of the removed upstream service is disabled; the others are not.
    with app.app_context():
        disabled = db.session.scalars(select(Service).where(Service.status == "disabled")).all()
        assert [s.routes[0].provider_service.external_id for s in disabled] == ["5"]

    # Coming back is "restored".
    sandbox.admin("reset", {})
    report = console.get(import_services(console, provider_id)).text
    assert "#5" in section(report, "restored")


def section(page: str, kind: str) -> str:
    match = re.search(rf'<section class="panel table-wrap" id="{kind}">(.*?)</section>', page, re.S)
    assert match, f"no {kind} section"
    return match.group(1)


def test_a_renamed_service_keeps_its_name_through_an_import(app, console, sandbox):
    provider_id = add_provider(console, sandbox)
    import_services(console, provider_id)
    service_id = rows(app, select(Service.id).order_by(Service.id))[0][0]
    response = console.post(
        f"/console/catalog/services/{service_id}",
        data={
            "name": "Followers — our best",
            "description": "Real-looking",
            "step": "10",
            "refill_days": "30",
            "status": "published",
        },
    )
    assert response.status_code == 302
    sandbox.admin("catalog", {"update": {"1": {"name": "Upstream renamed it"}}})
    import_services(console, provider_id)
    with app.app_context():
        service = db.session.get(Service, service_id)
        assert (service.name, service.description) == ("Followers — our best", "Real-looking")
        assert service.name_edited and service.description_edited
        assert (service.step, service.refill_days, service.status) == (10, 30, PUBLISHED)
    history = console.get(f"/console/catalog/services/{service_id}").text
    assert "Edited" in history and "Status changed" in history
    assert "Followers — our best" in history


# The catalog


@pytest.fixture
def imported(console, sandbox) -> int:
    provider_id = add_provider(console, sandbox)
    import_services(console, provider_id)
    return provider_id


def test_the_catalog_groups_services_by_category(app, console, imported):
    page = console.get("/console/catalog").text
    categories = [c for (c,) in rows(app, select(Category.name))]
    assert len(categories) > 3
    for name in categories:
        assert f'<tr class="group-row"><th colspan="8">{name} ' in page
    assert "sandbox" in page and "Wholesale per 1000" in page


def test_the_catalog_is_searched_by_name_and_number(app, console, imported):
    name = rows(app, select(Service.name).where(Service.id == 4))[0][0]
    page = console.get("/console/catalog", query_string={"q": name[-12:].lower()}).text
    assert name in page
    by_number = console.get("/console/catalog", query_string={"q": "#4"}).text
    assert name in by_number and f"1{DASH}1 of 1 services" in by_number
    nothing = console.get("/console/catalog", query_string={"q": "%_no such thing"}).text
    assert "No service matches these filters." in nothing


def test_the_catalog_is_filtered_by_status_provider_and_category(
    app, console, sandbox, make_sandbox, imported
):
    console.post("/console/catalog/status", data={"bulk": "published", "service_ids": ["1", "2"]})
    published = console.get("/console/catalog", query_string={"status": "published"}).text
    assert f"1{DASH}2 of 2 services" in published
    other = make_sandbox(services=3)
    other_id = add_provider(console, other, name="other")
    import_services(console, other_id)
    by_provider = console.get("/console/catalog", query_string={"provider": other_id}).text
    assert f"1{DASH}3 of 3 services" in by_provider
    category_id = rows(app, select(Service.category_id).where(Service.id == 1))[0][0]
    in_category = console.get("/console/catalog", query_string={"category": category_id}).text
    count = len(rows(app, select(Service.id).where(Service.category_id == category_id)))
    assert f"of {count} services" in in_category
    # Nonsense filters are ignored, never an error.
    odd = {"status": "bogus", "provider": "x", "category": "-1", "page": "zz"}
    assert console.get("/console/catalog", query_string=odd).status_code == 200


def bulk_catalog(app, count: int) -> None:
    """`count` services from one provider, imported by the sync service directly."""
    with app.app_context():
        provider = Provider(name="bulk", api_url="http://127.0.0.1:9/api/v2", api_key=KEY)
        db.session.add(provider)
        db.session.flush()
        upstream = [
            UpstreamService(
                external_id=str(n),
                name=f"Service {n:05d}",
                type="Default",
                category=f"Category {n % 40:02d}",
                rate=Decimal("0.5") + Decimal(n) / 1000,
                min_quantity=10,
                max_quantity=10000,
                refill=False,
                cancel=False,
                dripfeed=False,
            )
            for n in range(1, count + 1)
        ]
        sync_provider(provider, upstream, publish=True)
        db.session.commit()


def count_queries(app):
    queries: list[str] = []
    with app.app_context():
        engine = db.engine

    def note(conn, cursor, statement, *args):
        queries.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    return queries, lambda: event.remove(engine, "before_cursor_execute", note)


def test_the_catalog_pages_5000_services_in_a_fixed_number_of_queries(app, console):
    bulk_catalog(app, 5000)
    queries, stop = count_queries(app)
    try:
        started = time.monotonic()
        first = console.get("/console/catalog")
        elapsed = time.monotonic() - started
        first_count = len(queries)
        queries.clear()
        last = console.get("/console/catalog", query_string={"page": "100"})
        last_count = len(queries)
    finally:
        stop()
    assert first.status_code == last.status_code == 200
    assert "Page 1 of 100" in first.text and "Page 100 of 100" in last.text
    assert f"4951{DASH}5000 of 5000 services" in last.text
    assert first.text.count('name="service_ids"') == 50
    assert first_count == last_count <= 15
    assert elapsed < 2.0
    # Past the last page is the last page.
    assert "Page 100 of 100" in console.get("/console/catalog?page=9999").text


def test_the_pricing_preview_is_paginated_too(app, console):
    bulk_catalog(app, 120)
    page = console.get("/console/pricing", query_string={"page": "3"}).text
    assert "Page 3 of 3" in page
    assert page.count('class="mono muted">#') == 20


def test_services_are_published_unlisted_and_disabled_in_bulk(app, console, imported):
    response = console.post(
        "/console/catalog/status",
        data={"bulk": "published", "service_ids": ["1", "2", "3"], "next": "/console/catalog?q=x"},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/console/catalog?q=x"
    assert rows(app, select(Service.id).where(Service.status == PUBLISHED)) == [(1,), (2,), (3,)]
    console.post("/console/catalog/status", data={"set": "2:unlisted"})
    console.post("/console/catalog/status", data={"set": "3:disabled"})
    statuses = dict(rows(app, select(Service.id, Service.status).where(Service.id <= 3)))
    assert statuses == {1: "published", 2: "unlisted", 3: "disabled"}
    kinds = rows(app, select(CatalogChange.kind).where(CatalogChange.service_id == 3))
    assert ("status",) in kinds
    assert "catalog.status" in {a for (a,) in rows(app, select(AuditEntry.action))}


def test_nothing_ticked_or_a_bad_action_is_a_message(console, imported):
    console.post("/console/catalog/status", data={"bulk": "published"})
    assert "Tick the services to change first." in flashed(console, "/console/catalog")
    console.post("/console/catalog/status", data={"bulk": "sold", "service_ids": ["1"]})
    assert "Choose what to do" in flashed(console, "/console/catalog")
    assert console.post("/console/catalog/status", data={"set": "x:y"}).status_code == 302


def test_a_service_nobody_delivers_cannot_be_published(app, console, sandbox, imported):
    sandbox.admin("catalog", {"remove": [1]})
    import_services(console, imported)
    console.post("/console/catalog/status", data={"bulk": "published", "service_ids": ["1", "2"]})
    message = flashed(console, "/console/catalog")
    assert "1 services are now published" in message
    assert "have no available provider and were not published: #1" in message
    edit = console.post(
        "/console/catalog/services/1",
        data={"name": "x", "step": "1", "status": "published", "description": ""},
    )
    assert edit.status_code == 200 and "No available provider delivers this service" in edit.text


@pytest.mark.parametrize(
    "changes, error",
    [
        ({"name": ""}, "This field is required."),
        ({"name": "x" * 300}, "Use at most 255 characters."),
        ({"step": "abc"}, "Enter a whole number."),
        ({"step": "0"}, "Enter a number from 1 to 1000000."),
        ({"step": "999999"}, "The step cannot exceed the maximum quantity"),
        ({"refill_days": "-3"}, "Enter a number from 0 to 3650."),
        ({"status": "sold"}, "Choose a status from the list."),
    ],
)
def test_bad_service_input_is_a_form_error(console, imported, changes, error):
    data = {"name": "A name", "description": "", "step": "1", "status": "unlisted", **changes}
    response = console.post("/console/catalog/services/2", data=data)
    assert response.status_code == 200
    assert error in response.text


def test_an_unknown_service_or_category_is_a_404(console, imported):
    assert console.get("/console/catalog/services/9999").status_code == 404
    assert console.get("/console/catalog/categories/9999").status_code == 404
    assert console.post("/console/catalog/services/9999/routes").status_code == 404


HUGE = "9" * 30  # more than any database integer holds


def test_numbers_too_large_for_the_database_are_not_errors(console, imported):
    for path in (
        f"/console/catalog/services/{HUGE}",
        f"/console/catalog/categories/{HUGE}",
        f"/console/providers/{HUGE}",
    ):
        assert console.get(path).status_code == 404, path
    for query in ({"q": f"#{HUGE}"}, {"provider": HUGE, "category": HUGE, "page": HUGE}):
        assert console.get("/console/catalog", query_string=query).status_code == 200
    assert (
        console.get(
            "/console/catalog/services/1", query_string={"provider": HUGE, "find": HUGE}
        ).status_code
        == 200
    )
    assert (
        console.post("/console/catalog/status", data={"set": f"{HUGE}:published"}).status_code
        == 302
    )
    assert (
        console.post(
            "/console/catalog/services/1/routes", data={"provider_service_id": HUGE}
        ).status_code
        == 302
    )
    assert console.post("/console/pricing/clear", data={"service_id": HUGE}).status_code == 302
    for data, error in [
        ({"category-category_id": HUGE, "category-markup_percent": "5"}, "Choose a category."),
        ({"category-category_id": "abc", "category-markup_percent": "5"}, "Choose a category."),
    ]:
        response = console.post("/console/pricing/categories", data=data)
        assert response.status_code == 200 and error in response.text


def test_a_category_is_renamed_and_an_import_keeps_the_name(app, console, sandbox, imported):
    category_id, upstream = rows(app, select(Category.id, Category.upstream_name))[0]
    page = console.get(f"/console/catalog/categories/{category_id}")
    assert page.status_code == 200 and upstream in page.text
    response = console.post(
        f"/console/catalog/categories/{category_id}", data={"name": "Best sellers", "position": "0"}
    )
    assert response.status_code == 302
    import_services(console, imported)
    assert rows(app, select(Category.name).where(Category.id == category_id)) == [("Best sellers",)]
    assert "Best sellers" in console.get("/console/catalog").text
    empty = console.post(
        f"/console/catalog/categories/{category_id}", data={"name": "  ", "position": "0"}
    )
    assert empty.status_code == 200 and "This field is required." in empty.text


# Routes


def routes_of(app, service_id: int) -> list[tuple[int, str, str]]:
    with app.app_context():
        service = db.session.get(Service, service_id)
        return [
            (r.priority, r.provider_service.provider.name, r.provider_service.external_id)
            for r in service.routes
        ]


def test_a_fallback_route_is_found_added_reordered_and_removed(
    app, console, make_sandbox, imported
):
    other = make_sandbox(services=10)
    other_id = add_provider(console, other, name="other")
    import_services(console, other_id)
    service_id = 2
    found = console.get(
        f"/console/catalog/services/{service_id}", query_string={"provider": other_id, "find": "7"}
    )
    assert found.status_code == 200 and "Add as fallback" in found.text
    [(candidate,)] = rows(
        app,
        text(
            "SELECT ps.id FROM provider_services ps JOIN providers p ON p.id = ps.provider_id "
            "WHERE p.name = 'other' AND ps.external_id = '7'"
        ),
    )
    assert f'name="provider_service_id" value="{candidate}"' in found.text

    console.post(
        f"/console/catalog/services/{service_id}/routes", data={"provider_service_id": candidate}
    )
    assert routes_of(app, service_id) == [(1, "sandbox", "2"), (2, "other", "7")]
    again = console.post(
        f"/console/catalog/services/{service_id}/routes", data={"provider_service_id": candidate}
    )
    assert again.status_code == 302
    assert "already delivers this service" in flashed(
        console, f"/console/catalog/services/{service_id}"
    )

    # Swapping keeps (service, priority) unique at every step, and the service follows its
    # new primary route's limits.
    [(route_id,)] = rows(
        app,
        select(ServiceRoute.id).where(
            ServiceRoute.service_id == service_id, ServiceRoute.provider_service_id == candidate
        ),
    )
    move = f"/console/catalog/services/{service_id}/routes/{route_id}/move"
    assert console.post(move, data={"direction": "up"}).status_code == 302
    assert routes_of(app, service_id) == [(1, "other", "7"), (2, "sandbox", "2")]
    [(primary_min, primary_max)] = rows(
        app,
        text(f"SELECT min_quantity, max_quantity FROM provider_services WHERE id = {candidate}"),
    )
    assert rows(
        app, select(Service.min_quantity, Service.max_quantity).where(Service.id == service_id)
    ) == [(primary_min, primary_max)]
    console.post(move, data={"direction": "up"})  # already first: nothing happens
    console.post(move, data={"direction": "down"})
    assert routes_of(app, service_id) == [(1, "sandbox", "2"), (2, "other", "7")]
    page = console.get(f"/console/catalog/services/{service_id}").text
    assert "Routes changed" in page and "Fallback 1" in page

    [(first_id,)] = rows(
        app,
        select(ServiceRoute.id).where(
            ServiceRoute.service_id == service_id, ServiceRoute.priority == 1
        ),
    )
    console.post(f"/console/catalog/services/{service_id}/routes/{first_id}/remove")
    assert routes_of(app, service_id) == [(1, "other", "7")]
    console.post(f"/console/catalog/services/{service_id}/routes/{route_id}/remove")
    assert routes_of(app, service_id) == [(1, "other", "7")]
    assert "keeps at least one route" in flashed(console, f"/console/catalog/services/{service_id}")


def test_adding_an_unknown_provider_service_is_a_message(console, imported):
    console.post("/console/catalog/services/1/routes", data={"provider_service_id": "99999"})
    assert "does not exist" in flashed(console, "/console/catalog/services/1")


# Wholesale prices


def preview_row(page: str, service_id: int) -> str:
    match = re.search(
        rf'<tr[^>]*>\s*<td data-label="Service" class="service-cell">'
        rf'<a href="/console/catalog/services/{service_id}">'
        r"(.*?)</tr>",
        page,
        re.S,
    )
    assert match, f"service {service_id} is not in the preview"
    return match.group(1)


def cost_of(app, service_id: int) -> Decimal:
    with app.app_context():
        return db.session.get(Service, service_id).routes[0].provider_service.rate


def test_the_preview_shows_which_rule_wins(app, console, imported):
    """A service's fixed rate beats its category's markup, which beats the global markup."""
    category_id = rows(app, select(Service.category_id).where(Service.id == 1))[0][0]
    same_category = next(
        sid
        for (sid,) in rows(app, select(Service.id).where(Service.category_id == category_id))
        if sid != 1
    )
    elsewhere = rows(app, select(Service.id).where(Service.category_id != category_id))[0][0]

    assert (
        console.post("/console/pricing/global", data={"global-markup_percent": "10"}).status_code
        == 302
    )
    response = console.post(
        "/console/pricing/categories",
        data={"category-category_id": str(category_id), "category-markup_percent": "50"},
    )
    assert response.status_code == 302
    response = console.post(
        "/console/pricing/services",
        data={"service-service_id": "1", "service-kind": "fixed", "service-value": "0.000001"},
    )
    assert response.status_code == 302

    page = console.get("/console/pricing", query_string={"category": category_id}).text
    fixed = preview_row(page, 1)
    assert "Service fixed rate" in fixed and "0.000001" in fixed and "below cost" in fixed
    category = preview_row(page, same_category)
    expected = (cost_of(app, same_category) * Decimal("1.5")).quantize(Decimal("0.000001"))
    assert "Category markup" in category and "+50%" in category
    assert f"{expected.normalize():f}" in category.replace("</strong>", "")
    other = preview_row(console.get("/console/pricing").text, elsewhere)
    assert "Global markup" in other and "+10%" in other

    # Clearing the service's rule hands it back to its category.
    console.post("/console/pricing/clear", data={"service_id": "1"})
    page = console.get("/console/pricing", query_string={"category": category_id}).text
    assert "Category markup" in preview_row(page, 1)
    assert {"wholesale.rule"} <= {a for (a,) in rows(app, select(AuditEntry.action))}


def test_services_sold_below_cost_are_counted_and_filtered(app, console, imported):
    console.post("/console/pricing/global", data={"global-markup_percent": "-20"})
    page = console.get("/console/pricing", query_string={"below": "1"}).text
    assert "Sold below cost" in page
    assert page.count('badge--warning">below cost') == 30
    console.post("/console/pricing/global", data={"global-markup_percent": "20"})
    page = console.get("/console/pricing", query_string={"below": "1"}).text
    assert "No service matches these filters." in page


@pytest.mark.parametrize(
    "url, data, error",
    [
        ("/console/pricing/global", {"global-markup_percent": "abc"}, "is not a number"),
        ("/console/pricing/global", {"global-markup_percent": "-100"}, "between -100 and 10000"),
        ("/console/pricing/global", {"global-markup_percent": ""}, "This field is required."),
        (
            "/console/pricing/categories",
            {"category-category_id": "9999", "category-markup_percent": "5"},
            "Choose a category.",
        ),
        (
            "/console/pricing/services",
            {"service-service_id": "9999", "service-kind": "markup", "service-value": "5"},
            "No service has that number.",
        ),
        (
            "/console/pricing/services",
            {"service-service_id": "1", "service-kind": "fixed", "service-value": "0"},
            "A fixed rate must be above zero",
        ),
        (
            "/console/pricing/services",
            {"service-service_id": "1", "service-kind": "fixed", "service-value": "0.0000001"},
            "at most 6 decimal places",
        ),
        (
            "/console/pricing/services",
            {"service-service_id": "x", "service-kind": "fixed", "service-value": "1"},
            "Enter a whole number.",
        ),
        (
            "/console/pricing/services",
            {"service-service_id": "1", "service-kind": "free", "service-value": "1"},
            "Choose a markup or a fixed rate.",
        ),
    ],
)
def test_bad_pricing_input_is_a_form_error(app, console, imported, url, data, error):
    response = console.post(url, data=data)
    assert response.status_code == 200
    assert error in response.text
    assert rows(app, text("SELECT id FROM wholesale_rules")) == []


def test_a_service_rule_is_set_from_the_service_page(app, console, imported):
    response = console.post(
        "/console/pricing/services",
        data={
            "prefix": "rule",
            "rule-service_id": "3",
            "rule-kind": "markup",
            "rule-value": "25",
            "next": "/console/catalog/services/3",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/catalog/services/3"
    page = console.get("/console/catalog/services/3").text
    assert "Service markup" in page and 'value="25"' in page
    bad = console.post(
        "/console/pricing/services",
        data={"prefix": "rule", "rule-service_id": "3", "rule-kind": "fixed", "rule-value": "x"},
    )
    assert bad.status_code == 200 and "Save service" in bad.text and "is not a number" in bad.text


def test_a_missing_exchange_rate_is_explained_not_an_error(app, console, sandbox):
    provider_id = add_provider(console, sandbox, currency="IDR")
    import_services(console, provider_id)
    for path in ("/console/catalog", "/console/pricing", "/console/catalog/services/1"):
        page = console.get(path)
        assert page.status_code == 200
        assert "No exchange rate for IDR/USD" in page.text
    assert "Missing" in console.get("/console/fx").text
    console.post("/console/fx", data={"base": "USD", "quote": "IDR", "rate": "16000"})
    page = console.get("/console/pricing").text
    assert "No exchange rate" not in page
    # 16000 IDR is one dollar: a cost in rupiah is shown converted.
    assert "Cost in USD" in page


# Exchange rates


def test_an_exchange_rate_is_set_and_listed(app, console):
    response = console.post("/console/fx", data={"base": "USD", "quote": "IDR", "rate": "16250"})
    assert response.status_code == 302
    page = console.get("/console/fx").text
    assert "1 USD = 16250 IDR saved." in page
    assert "1 USD = 16250 IDR" in page and "1 IDR = 0.00006153846154 USD" in page
    assert "op@example.com" in page
    # The reverse pair replaces it: one pair, one number.
    console.post("/console/fx", data={"base": "IDR", "quote": "USD", "rate": "0.00006"})
    assert rows(app, text("SELECT base, quote FROM fx_rates")) == [("IDR", "USD")]
    assert "fx.set" in {a for (a,) in rows(app, select(AuditEntry.action))}


@pytest.mark.parametrize(
    "data, error",
    [
        ({"base": "USD", "quote": "IDR", "rate": "abc"}, "is not a number"),
        ({"base": "USD", "quote": "IDR", "rate": "0"}, "must be more than zero"),
        ({"base": "USD", "quote": "IDR", "rate": "-5"}, "must be more than zero"),
        ({"base": "USD", "quote": "IDR", "rate": "16,250"}, "without thousands separators"),
        ({"base": "USD", "quote": "IDR", "rate": ""}, "This field is required."),
        ({"base": "USD", "quote": "USD", "rate": "1"}, "two different currencies"),
        ({"base": "XXX", "quote": "IDR", "rate": "1"}, "Unknown currency"),
    ],
)
def test_bad_exchange_rates_are_form_errors(app, console, data, error):
    response = console.post("/console/fx", data=data)
    assert response.status_code == 200
    assert error in response.text
    assert rows(app, text("SELECT id FROM fx_rates")) == []


# Who may see these pages


SUPPLY_PAGES = [
    "/console/providers",
    "/console/providers/1",
    "/console/providers/1/imports/abc123",
    "/console/catalog",
    "/console/catalog/services/1",
    "/console/catalog/categories/1",
    "/console/pricing",
    "/console/fx",
]
SUPPLY_ACTIONS = [
    "/console/providers",
    "/console/providers/1",
    "/console/providers/1/check",
    "/console/providers/1/import",
    "/console/providers/1/toggle",
    "/console/catalog/status",
    "/console/catalog/services/1",
    "/console/catalog/services/1/routes",
    "/console/catalog/services/1/routes/1/move",
    "/console/catalog/services/1/routes/1/remove",
    "/console/catalog/categories/1",
    "/console/pricing/global",
    "/console/pricing/categories",
    "/console/pricing/services",
    "/console/pricing/clear",
    "/console/fx",
]


@pytest.fixture
def one_of_each(app, console, imported):
    """A provider, services and a category, so the id-bearing pages exist."""
    return imported


def test_anonymous_visitors_are_sent_to_the_console_login(one_of_each, browser_for):
    anonymous = browser_for("localhost")
    for path in SUPPLY_PAGES:
        response = anonymous.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/console/login"), path
    for path in SUPPLY_ACTIONS:
        assert anonymous.post(path, data={"bulk": "disabled"}).status_code == 302, path


def test_a_tenant_staff_cookie_does_not_open_the_console(app, make, one_of_each, browser_for):
    tenant_id = make.tenant("acme")
    make.staff(tenant_id, "staff@acme.example.com", role="owner")
    acme = browser_for("acme.localhost")
    assert sign_in(acme, "/admin/login", "staff@acme.example.com").status_code == 302
    stolen = acme.cookie("pasok_staff", path="/admin").value
    root = browser_for("localhost")
    root.client.set_cookie("pasok_operator", stolen, domain="localhost", path="/console")
    for path in SUPPLY_PAGES:
        assert root.get(path).status_code == 302, path
    root.post("/console/catalog/status", data={"bulk": "disabled", "service_ids": ["1"]})
    assert rows(app, select(Service.status).where(Service.id == 1)) == [(UNLISTED,)]


def test_the_supply_pages_do_not_exist_on_a_tenant_host(make, one_of_each, browser_for):
    make.tenant("acme")
    acme = browser_for("acme.localhost")
    for path in SUPPLY_PAGES:
        assert acme.get(path).status_code == 404, path
    for path in SUPPLY_ACTIONS:
        assert acme.post(path).status_code == 404, path


def test_the_console_speaks_indonesian(app, console, imported):
    console.post("/console/language", data={"locale": "id"})
    for path, marker in [
        ("/console/providers", "Tambah penyedia"),
        ("/console/catalog", "Katalog"),
        ("/console/pricing", "Harga grosir"),
        ("/console/fx", "Kurs"),
    ]:
        page = console.get(path)
        assert page.status_code == 200
        assert marker in page.text, path
