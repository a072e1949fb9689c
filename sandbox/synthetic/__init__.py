"""Synthetic data that describes nobody, for demos, tests, benchmarks and dummy views.

``identifiers`` makes resident IDs, credit codes and mobiles with a real
form (check characters, carrier prefixes) and validates them; ``demo``
builds on it to generate the demo city's raw tables, which enter like a
provider's data (stage 0). Dummy views (``sandbox.views.dummy``) use
``identifiers`` too.
"""
