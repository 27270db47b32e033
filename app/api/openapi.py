"""`/api/v2/openapi.json`: a machine-readable description of the panel's API v2 (OpenAPI 3.1),
with this panel's own address as its server."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request

from app.api import bp
from app.api.errors import ERRORS, NO_PANEL, error_reply
from app.catalog.order_types import ORDER_TYPES

ACTIONS = ("services", "add", "status", "refill", "refill_status", "cancel", "balance")
TEXT = {"type": "string"}
ID = {"type": "integer", "minimum": 1}
MONEY = {"type": "string", "pattern": r"^\d+(\.\d+)?$"}


def _param(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or TEXT,
    }


def _error(extra: str = "") -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string", "examples": list(ERRORS)}},
        "description": "Every error: HTTP 200 with this body, in English." + extra,
    }


def _order_params() -> dict[str, Any]:
    names = sorted({p for t in ORDER_TYPES.values() for p in t.params})
    return {name: TEXT for name in names}


def describe(server: str, panel: str) -> dict[str, Any]:
    status = {
        "type": "object",
        "properties": {
            "charge": MONEY,
            "start_count": TEXT,
            "status": {
                "type": "string",
                "enum": [
                    "Pending",
                    "In progress",
                    "Processing",
                    "Completed",
                    "Partial",
                    "Canceled",
                ],
            },
            "remains": TEXT,
            "currency": TEXT,
        },
    }
    per_id = {"oneOf": [{"type": "integer"}, {"$ref": "#/components/schemas/Error"}]}
    schemas = {
        "Error": _error(),
        "Service": {
            "type": "object",
            "properties": {
                "service": ID,
                "name": TEXT,
                "type": {"type": "string", "enum": list(ORDER_TYPES)},
                "category": TEXT,
                "rate": MONEY,
                "min": TEXT,
                "max": TEXT,
                "refill": {"type": "boolean"},
                "cancel": {"type": "boolean"},
                "dripfeed": {"type": "boolean"},
            },
        },
        "Added": {"type": "object", "properties": {"order": ID}},
        "Status": status,
        "MultiStatus": {
            "type": "object",
            "additionalProperties": {
                "oneOf": [
                    {"$ref": "#/components/schemas/Status"},
                    {"$ref": "#/components/schemas/Error"},
                ],
            },
        },
        "Refill": {"type": "object", "properties": {"refill": TEXT}},
        "MultiRefill": {
            "type": "array",
            "items": {"type": "object", "properties": {"order": ID, "refill": per_id}},
        },
        "RefillStatus": {
            "type": "object",
            "properties": {
                "status": {
                    "type": "string",
                    "enum": ["Pending", "In progress", "Completed", "Rejected", "Error"],
                },
            },
        },
        "MultiRefillStatus": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "refill": ID,
                    "status": {"oneOf": [TEXT, {"$ref": "#/components/schemas/Error"}]},
                },
            },
        },
        "Cancel": {
            "type": "array",
            "items": {"type": "object", "properties": {"order": ID, "cancel": per_id}},
        },
        "Balance": {"type": "object", "properties": {"balance": MONEY, "currency": TEXT}},
    }
    replies = [
        {"$ref": f"#/components/schemas/{name}"}
        for name in (
            "Error",
            "Added",
            "Status",
            "MultiStatus",
            "Refill",
            "MultiRefill",
            "RefillStatus",
            "MultiRefillStatus",
            "Cancel",
            "Balance",
        )
    ]
    replies.append({"type": "array", "items": {"$ref": "#/components/schemas/Service"}})
    parameters = [
        _param("key", "Your API key (or send it in `X-Api-Key` or `Authorization: Bearer`)."),
        _param(
            "action",
            "What to do. Without it, `refill`/`refills` reads as `refill_status` and "
            "`order`/`orders` as `status`.",
            {"type": "string", "enum": list(ACTIONS)},
        ),
        _param("service", "add: the service id.", ID),
        _param(
            "ref",
            "add: your own order reference; the same ref again returns the same "
            "order, charged once (at most 64 characters).",
        ),
        _param("order", "status, refill, cancel: one order id.", ID),
        _param("orders", "status, refill, cancel: up to 100 order ids, comma separated."),
        _param("refill", "refill_status: one refill id.", ID),
        _param("refills", "refill_status: up to 100 refill ids, comma separated."),
    ]
    order_fields = _order_params()
    parameters += [
        _param(name, "add: a parameter of the service's order type.")
        for name in order_fields
        if name not in ("service",)
    ]
    form = {
        "type": "object",
        "required": ["action"],
        "properties": {
            "key": TEXT,
            "action": {"type": "string", "enum": list(ACTIONS)},
            "service": ID,
            "ref": TEXT,
            "order": ID,
            "orders": TEXT,
            "refill": ID,
            "refills": TEXT,
            **order_fields,
        },
    }
    reply = {
        "description": "The action's reply, or an error (also HTTP 200).",
        "content": {"application/json": {"schema": {"oneOf": replies}}},
    }
    security = [{"keyParam": []}, {"apiKeyHeader": []}, {"bearer": []}]
    operation = {"parameters": parameters, "responses": {"200": reply}, "security": security}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{panel} API v2",
            "version": "2",
            "description": (
                "The common SMM panel API v2. One URL; `key` and `action` on every call, by POST "
                "form, POST JSON or GET query string. Errors are HTTP 200 with "
                '`{"error": "…"}` in English. Order types and their `add` parameters: '
                + "; ".join(f"{t.name}: {', '.join(t.required)}" for t in ORDER_TYPES.values())
                + "."
            ),
        },
        "servers": [{"url": server}],
        "paths": {
            "/": {
                "get": {**operation, "operationId": "callGet"},
                "post": {
                    **operation,
                    "operationId": "callPost",
                    "parameters": [],
                    "requestBody": {
                        "content": {
                            "application/x-www-form-urlencoded": {"schema": form},
                            "application/json": {"schema": form},
                        }
                    },
                },
            }
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "keyParam": {"type": "apiKey", "in": "query", "name": "key"},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }


@bp.get("/api/v2/openapi.json")
def openapi_description():
    """The API's OpenAPI description, for this panel's host."""
    tenant = g.get("tenant")
    if tenant is None:
        return error_reply(NO_PANEL)
    response = jsonify(describe(f"{request.host_url}api/v2", tenant.name))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
