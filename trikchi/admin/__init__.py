"""Staff administration: users and the audit log."""
