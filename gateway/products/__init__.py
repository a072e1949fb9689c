"""Data products: registered from released jobs, with their lineage."""
