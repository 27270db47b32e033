"""Every string a person sees has its Bahasa Indonesia translation, the committed catalogue
files agree with each other and with the source, and pages speak the language chosen by the
signed-in customer, then this browser, then the panel."""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path

import pytest
from babel.messages.catalog import PYTHON_FORMAT, Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from sqlalchemy import select

from app.accounts.models import User
from app.extensions import db
from tenants.context import across_tenants
from tenants.theming import load_themes
from tests.conftest import sign_in

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "app" / "translations"
TEMPLATE = TRANSLATIONS / "messages.pot"
PO_FILE = TRANSLATIONS / "id" / "LC_MESSAGES" / "messages.po"
MO_FILE = TRANSLATIONS / "id" / "LC_MESSAGES" / "messages.mo"

# flask_babel's gettext functions, whatever a module imports them as.
GETTEXT_FUNCTIONS = {"gettext", "lazy_gettext", "ngettext", "lazy_ngettext", "pgettext"}
THEMES = sorted(load_themes(ROOT / "themes"))


def source_files() -> set[str]:
    """What babel.cfg must cover: Python in app/ and tenants/, every template, every theme."""
    paths = [
        *(ROOT / "app").rglob("*.py"),
        *(ROOT / "tenants").rglob("*.py"),
        *(ROOT / "app" / "templates").rglob("*.html"),
        *(ROOT / "themes").glob("*/templates/**/*.html"),
        *(ROOT / "themes").glob("*/theme.json"),
    ]
    return {path.relative_to(ROOT).as_posix() for path in paths}


def read_catalogue(path: Path) -> Catalog:
    with path.open("rb") as file:
        return read_po(file, locale="id" if path == PO_FILE else None)


def translations_of(message: Message) -> list[str]:
    return list(message.string) if isinstance(message.string, tuple | list) else [message.string]


def ids_of(message: Message) -> list[str]:
    return list(message.id) if isinstance(message.id, tuple | list) else [message.id]


def msgids(catalogue: Catalog) -> set[str]:
    return {ids_of(m)[0] for m in catalogue if m.id}


def placeholders(text: str) -> list[str]:
    return sorted(match.group(0) for match in PYTHON_FORMAT.finditer(text))


@pytest.fixture(scope="module")
def extraction() -> tuple[dict[str, list[str]], set[str]]:
    """What `pybabel extract -F babel.cfg` finds: each msgid with where it is used, and the
    files it read."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as file:
        method_map, options_map = parse_mapping_cfg(file, "babel.cfg")
    read: set[str] = set()

    def note(filename, method, options):
        if method != "ignore":
            read.add(filename)

    messages: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options_map, callback=note
    ):
        msgid = message if isinstance(message, str) else message[0]
        messages.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return messages, read


@pytest.fixture(scope="module")
def extracted(extraction) -> dict[str, list[str]]:
    return extraction[0]


@pytest.fixture(scope="module")
def catalogue() -> Catalog:
    return read_catalogue(PO_FILE)


# The catalogue against the source


def test_babel_cfg_covers_every_source_file(extraction):
    _messages, read = extraction
    missed = sorted(source_files() - read)
    assert not missed, "babel.cfg does not cover:\n" + "\n".join(missed)


def test_babel_cfg_extracts_every_marked_python_string(extracted):
    """A cross-check by another route: every literal passed to a flask_babel gettext function,
    under any alias, is extracted; an f-string could never be translated."""
    missed, unextractable = [], []
    for name in sorted(source_files()):
        if not name.endswith(".py"):
            continue
        tree = ast.parse((ROOT / name).read_text(encoding="utf-8"), name)
        aliases = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "flask_babel"
            for alias in node.names
            if alias.name in GETTEXT_FUNCTIONS
        }
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in aliases
                and node.args
            ):
                continue
            first = node.args[0]
            if isinstance(first, ast.JoinedStr):
                unextractable.append(f"{name}:{node.lineno}")
            elif isinstance(first, ast.Constant) and first.value not in extracted:
                missed.append(f"{name}:{node.lineno}: {first.value!r}")
    assert not missed, "babel.cfg does not extract:\n" + "\n".join(missed)
    assert not unextractable, "f-strings cannot be translated; pass %(name)s arguments:\n" + (
        "\n".join(unextractable)
    )


def test_every_message_has_an_indonesian_translation(extracted, catalogue):
    problems = []
    for msgid, places in sorted(extracted.items()):
        message = catalogue.get(msgid)
        if message is None:
            problems.append(f"not in the catalogue: {msgid!r} ({places[0]})")
        elif message.fuzzy:
            problems.append(f"fuzzy: {msgid!r}")
        elif not all(text.strip() for text in translations_of(message)):
            problems.append(f"untranslated: {msgid!r} ({places[0]})")
    assert not problems, "run `make translations`, then translate:\n" + "\n".join(problems)


def test_translations_keep_every_placeholder(catalogue):
    """Same `%(name)s` placeholders, and no stray `%`: templates format every string."""
    problems = []
    for message in catalogue:
        if not message.id:
            continue
        expected = placeholders(ids_of(message)[0])
        percents = ids_of(message)[0].count("%")
        for text in translations_of(message):
            if placeholders(text) != expected or text.count("%") != percents:
                problems.append(f"{ids_of(message)[0]!r} -> {text!r}")
    assert not problems, "placeholders differ:\n" + "\n".join(problems)


def test_catalogue_has_no_messages_the_source_no_longer_uses(extracted, catalogue):
    stale = sorted(msgids(catalogue) - set(extracted))
    assert not stale, "run `make translations`; no longer in the source:\n" + "\n".join(stale)


def test_committed_template_lists_exactly_the_source_messages(extracted):
    assert msgids(read_catalogue(TEMPLATE)) == set(extracted), "run `make translations`"


def test_committed_mo_is_compiled_from_the_po(catalogue):
    """What `pybabel compile` would write now (fuzzy entries left out) is what is committed."""
    compiled = io.BytesIO()
    write_mo(compiled, catalogue)
    compiled.seek(0)
    with MO_FILE.open("rb") as file:
        committed = read_mo(file)

    def table(mo: Catalog) -> dict:
        return {(tuple(ids_of(m)), m.context): tuple(translations_of(m)) for m in mo if m.id}

    assert table(committed) == table(read_mo(compiled)), "run `make translations`"


def test_theme_setting_labels_and_descriptions_are_translated(catalogue):
    """Labels are shown through `_(setting.label)` on the branding page; they reach the
    catalogue through the theme.json extractor named in babel.cfg."""
    untranslated = []
    for theme in load_themes(ROOT / "themes").values():
        for text in [theme.description, *(setting.label for setting in theme.settings)]:
            message = catalogue.get(text)
            if message is None or message.fuzzy or not message.string.strip():
                untranslated.append(f"{theme.name}: {text!r}")
    assert not untranslated, "untranslated theme strings:\n" + "\n".join(untranslated)


# Pages in the chosen language


@pytest.fixture
def toko(make):
    """An Indonesian panel."""
    return make.tenant("toko", currency="IDR", locale="id")


@pytest.fixture
def acme(make):
    """An English panel (USD panels default to English)."""
    return make.tenant("acme")


def html_lang(response) -> str:
    match = re.search(r'<html lang="([^"]*)"', response.text)
    return match.group(1) if match else ""


def has_text(response, text: str) -> bool:
    """`text` is the whole content of some element (so "Masuk" does not match "Masukkan")."""
    return re.search(rf">\s*{re.escape(text)}\s*<", response.text) is not None


def english_left(response, catalogue: Catalog) -> list[str]:
    """Catalogue strings still shown in English where the translation differs."""
    return sorted(
        message.id
        for message in catalogue
        if isinstance(message.id, str)
        and message.id
        and message.string != message.id
        and has_text(response, message.id)
    )


def set_locale(app, email: str, locale: str | None) -> None:
    with app.app_context(), across_tenants():
        db.session.scalar(select(User).where(User.email == email)).locale = locale
        db.session.commit()


def saved_locale(app, email: str) -> str | None:
    with app.app_context(), across_tenants():
        return db.session.scalar(select(User.locale).where(User.email == email))


@pytest.mark.parametrize("theme", THEMES)
def test_indonesian_panel_home_page_is_in_indonesian(make, browser_for, catalogue, theme):
    make.tenant("toko", theme=theme, currency="IDR", locale="id")
    page = browser_for("toko.localhost").get("/")
    assert page.status_code == 200
    assert html_lang(page) == "id"
    assert has_text(page, "Masuk") and has_text(page, "Daftar")
    assert "Isi saldo" in page.text
    assert english_left(page, catalogue) == []


@pytest.mark.parametrize("theme", THEMES)
def test_indonesian_panel_login_page_is_in_indonesian(make, browser_for, catalogue, theme):
    make.tenant("toko", theme=theme, currency="IDR", locale="id")
    page = browser_for("toko.localhost").get("/login")
    assert page.status_code == 200
    assert html_lang(page) == "id"
    assert has_text(page, "Masuk") and has_text(page, "Kata sandi")
    assert has_text(page, "Lupa kata sandi?")
    assert english_left(page, catalogue) == []


def test_english_panel_is_in_english(acme, browser_for):
    client = browser_for("acme.localhost")
    for path in ("/", "/login"):
        page = client.get(path)
        assert page.status_code == 200
        assert html_lang(page) == "en"
        assert has_text(page, "Sign in")
        assert not has_text(page, "Masuk")


def test_platform_site_follows_the_browser_language(app, browser_for, catalogue):
    """The bare platform domain has no panel default: the browser's Accept-Language decides."""
    client = browser_for("localhost")
    assert html_lang(client.get("/")) == "en"
    page = client.get("/", headers={"Accept-Language": "id-ID,id;q=0.9,en;q=0.5"})
    assert page.status_code == 200
    assert html_lang(page) == "id"
    assert has_text(page, "Masuk operator")
    assert english_left(page, catalogue) == []


def test_language_choice_is_remembered_across_requests(acme, browser_for):
    client = browser_for("acme.localhost")
    response = client.post("/language", data={"locale": "id", "next": "/login"})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    for path in ("/login", "/", "/register"):
        page = client.get(path)
        assert html_lang(page) == "id", path
        assert has_text(page, "Masuk"), path
    # The choice belongs to this browser: another one still sees the panel's language.
    assert html_lang(browser_for("acme.localhost").get("/")) == "en"


def test_an_unknown_language_is_ignored(toko, browser_for):
    client = browser_for("toko.localhost")
    client.post("/language", data={"locale": "fr"})
    assert html_lang(client.get("/")) == "id"


def test_language_saved_on_the_account_page_follows_the_customer(toko, make, app, browser_for):
    make.customer(toko, "budi@example.com")
    client = browser_for("toko.localhost")
    sign_in(client, "/login", "budi@example.com")
    saved = client.post("/account", data={"lang-locale": "en"})
    assert saved.status_code == 302
    assert saved_locale(app, "budi@example.com") == "en"
    assert html_lang(client.get("/account")) == "en"
    # A fresh browser on this Indonesian panel: Indonesian until Budi signs in.
    other = browser_for("toko.localhost")
    assert html_lang(other.get("/login")) == "id"
    sign_in(other, "/login", "budi@example.com")
    dashboard = other.get("/dashboard")
    assert html_lang(dashboard) == "en"
    assert has_text(dashboard, "Balance")


def test_signed_in_customer_language_wins_over_panel_and_browser(acme, make, app, browser_for):
    make.customer(acme, "siti@example.com")
    set_locale(app, "siti@example.com", "id")
    client = browser_for("acme.localhost")
    client.post("/language", data={"locale": "en"})
    assert html_lang(client.get("/")) == "en"
    sign_in(client, "/login", "siti@example.com")
    dashboard = client.get("/dashboard")
    assert html_lang(dashboard) == "id"
    assert has_text(dashboard, "Saldo") and has_text(dashboard, "Pesanan")


def test_branding_page_shows_every_theme_label_in_indonesian(toko, browser_for, catalogue):
    client = browser_for("toko.localhost")
    sign_in(client, "/admin/login", "owner@toko.example.com")
    for theme in load_themes(ROOT / "themes").values():
        page = client.get(f"/admin/branding?theme={theme.name}")
        assert page.status_code == 200
        assert html_lang(page) == "id"
        for setting in theme.settings:
            label = catalogue.get(setting.label).string
            assert has_text(page, label), f"{theme.name}: {setting.label}"


@pytest.mark.parametrize(
    "host, path, login",
    [
        ("toko.localhost", "/admin/", ("/admin/login", "owner@toko.example.com")),
        ("localhost", "/", None),
    ],
)
def test_back_office_language_menu_shows_the_current_language(make, browser_for, host, path, login):
    make.tenant("toko", currency="IDR")
    client = browser_for(host)
    if login:
        sign_in(client, *login)
    client.post("/admin/language" if login else "/language", data={"locale": "id"})
    page = client.get(path).data.decode()
    assert '<option value="id" selected>' in page
