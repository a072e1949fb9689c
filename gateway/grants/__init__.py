"""Grants: one operator, one scenario, exactly the datasets and columns it needs, for a term."""
