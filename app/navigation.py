from flask import request


def safe_next(default: str) -> str:
    """The `next` path if it stays on this host, else `default` (no open redirects)."""
    target = request.values.get("next") or ""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default
