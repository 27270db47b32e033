from flask import g, jsonify, request

from app.payments.receiving import Receipt, receive_midtrans, receive_stripe
from app.webhooks import bp

MAX_BODY = 256 * 1024


def _receiver() -> int | None:
    return g.tenant.id if g.get("tenant") is not None else None


def _answer(receipt: Receipt):
    return jsonify({"received": receipt.status == 200, "result": receipt.message}), receipt.status


def _body() -> bytes | None:
    # The raw bytes: a signature covers them exactly, not a re-serialised parse.
    if (request.content_length or 0) > MAX_BODY:
        return None
    return request.get_data(cache=False)


@bp.post("/stripe")
def stripe_events():
    """Stripe's events for this host's account."""
    payload = _body()
    if payload is None:
        return _answer(Receipt(413, "too large"))
    return _answer(receive_stripe(_receiver(), payload, request.headers.get("Stripe-Signature")))


@bp.post("/midtrans")
def midtrans_notifications():
    """Midtrans's HTTP notifications for this host's merchant."""
    payload = _body()
    if payload is None:
        return _answer(Receipt(413, "too large"))
    return _answer(receive_midtrans(_receiver(), payload))
