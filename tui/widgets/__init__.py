"""Widgets of the dashboard, one feature per module."""
