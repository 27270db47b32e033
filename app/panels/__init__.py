"""Panels: the tenants (reseller storefronts) and their domains."""
