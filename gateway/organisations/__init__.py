"""Organisations: whom an account works for, and the rule it serves (no self-consumption)."""
