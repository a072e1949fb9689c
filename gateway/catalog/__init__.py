"""The operators' catalogue: the views of the grants they hold, and dummy data for them."""
