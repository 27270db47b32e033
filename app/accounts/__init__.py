"""Accounts: operators, tenant staff and customers, their passwords and sessions."""
