"""Accounts: users, roles, logging in, registration and approval, password reset."""
