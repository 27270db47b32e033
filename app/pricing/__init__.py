"""Prices: the operator's wholesale rules (provider cost → platform wholesale)."""
