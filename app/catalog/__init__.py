"""The platform catalog: categories, services, their upstream routes, and order types."""
