"""The API's error strings. They are English in every locale, since clients match them, and
each is answered as HTTP 200 with `{"error": "…"}` (some clients raise on 4xx and lose the
message). The strings follow the common SMM panel API v2 where it has one."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask_babel import force_locale

INVALID_KEY = "Invalid API key"
PANEL_SUSPENDED = "Panel suspended"
NO_PANEL = "No panel at this address"
INCORRECT_REQUEST = "Incorrect request"
UNKNOWN_ACTION = "Unknown action"
INCORRECT_SERVICE = "Incorrect service ID"
INCORRECT_ORDER = "Incorrect order ID"
INCORRECT_REFILL = "Incorrect refill ID"
NOT_ENOUGH_FUNDS = "Not enough funds on balance"
TOO_MANY_IDS = "Too many IDs: at most 100 per request"
INVALID_JSON = "Incorrect request: the body is not valid JSON"
BAD_TEXT = "Incorrect request: parameters must be text without NUL characters"
RATE_LIMITED = "Too many requests: at most {limit} per API key; try again in {seconds} seconds"
INTERNAL = "Internal error; please try again later"

# Every error the endpoint answers with (the `/api` page and the OpenAPI description list them).
ERRORS = (
    INVALID_KEY,
    PANEL_SUSPENDED,
    INCORRECT_REQUEST,
    UNKNOWN_ACTION,
    INCORRECT_SERVICE,
    INCORRECT_ORDER,
    INCORRECT_REFILL,
    NOT_ENOUGH_FUNDS,
    TOO_MANY_IDS,
    INVALID_JSON,
    BAD_TEXT,
)


class ApiError(Exception):
    """A call the API refuses; `str()` is the English message the client gets."""


def english(message: Any) -> str:
    """A domain message (perhaps a lazy translation) in English, whatever the request's locale."""
    with force_locale("en"):
        return str(message)


def error_reply(message: Any, status: int = 200) -> Response:
    response = jsonify(error=english(message))
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response
