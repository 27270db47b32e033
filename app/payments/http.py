"""The HTTP session the gateway SDKs are given: every call bounded in time, and `*.localhost`
reached on this machine (see DESIGN.md: the simulators and the demo's hosts)."""

from __future__ import annotations

from typing import Any

import requests

from app.providers.client import loopback_for_localhost

# (connect, read) seconds: a webhook handler re-reads the gateway while the gateway waits for
# its answer, and a customer waits on the checkout redirect.
GATEWAY_TIMEOUT = (3.05, 10.0)


class GatewaySession(requests.Session):
    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        url, host = loopback_for_localhost(url)
        if host:
            kwargs["headers"] = {**(kwargs.get("headers") or {}), **host}
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = GATEWAY_TIMEOUT
        return super().request(method, url, *args, **kwargs)
