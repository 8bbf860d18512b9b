"""Notifications: the transactional e-mail outbox and the in-app list."""
