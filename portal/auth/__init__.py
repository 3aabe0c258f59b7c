"""Accounts: registration, confirmation, sign-in, MFA, password reset, sessions."""
