"""The tenancy layer: host → tenant, the current-tenant context, query scoping,
provisioning, and per-tenant theming."""
