"""Admin API: dashboard, user management, order management, audit log."""
