"""Checks: small pure functions over a MeshSnapshot, one module per category."""
