"""Providers' routes: register datasets and govern their exposure policies."""
