"""Administration: users, forces, themes, the audit log."""
