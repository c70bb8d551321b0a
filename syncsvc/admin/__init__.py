"""The admin API (scope ``admin``): trigger and inspect syncs, status."""

from syncsvc.admin.routes import ADMIN, AdminState, add_routes

__all__ = ["ADMIN", "AdminState", "add_routes"]
