"""Your own account: your details, your password, two-factor authentication."""
