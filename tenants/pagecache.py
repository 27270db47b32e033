"""Pages for visitors who are not signed in, rendered once per tenant snapshot and language.

A storefront's public pages are the same for every anonymous visitor, so rendering the theme
for each request is wasted work. An entry is tied to the tenant snapshot it was rendered for:
the resolver replaces the snapshot every `PASOK_TENANT_CACHE_SECONDS` and at once after a
change, so a new theme, setting or suspension reaches visitors as fast as it reaches routing.
Visitors' pages hold no CSRF token (the only form on them, the language menu, is a GET), so
nothing personal is ever cached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import wraps

from flask import current_app, g, request, session
from flask_login import current_user

from app.i18n import select_locale
from tenants.resolution import TenantInfo


class VisitorPageCache:
    def __init__(self, max_entries: int = 1024):
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, tuple[TenantInfo, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, tenant: TenantInfo) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] is not tenant:
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: tuple, tenant: TenantInfo, body: str) -> None:
        with self._lock:
            self._entries[key] = (tenant, body)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


def cached_for_visitors(view):
    """Serve `view`'s page from the cache to visitors who are not signed in and have no
    pending messages; everyone else gets it rendered for them."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_user.is_authenticated or "_flashes" in session:
            return view(*args, **kwargs)
        cache: VisitorPageCache = current_app.extensions["pasok_page_cache"]
        key = (g.tenant.id, request.host, select_locale(), request.full_path)
        body = cache.get(key, g.tenant)
        if body is None:
            body = view(*args, **kwargs)
            cache.put(key, g.tenant, body)
        return body

    return wrapped
