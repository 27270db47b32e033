"""Upstream providers: the API v2 client, the provider records, and their services."""
