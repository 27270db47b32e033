"""Orders: the `Order` model, the validation of an order's input per order type, and the one
code path that places, cancels and resumes orders (`app.orders.services`)."""
