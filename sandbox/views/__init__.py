"""Stage 3: the grant's read-only views over real data, and their dummy twins.

A grant (its datasets, columns and pseudonym key) comes in with the dataset
versions and exposure policies from intake. ``query`` writes each view's SQL
(only exposed columns, keyed pseudonyms, generalised values, row filters);
``build`` runs it into a content-addressed cache of Parquet views with
``catalog.json``; ``dummy`` runs the same SQL over synthetic rows generated
from the schema and declared domains. What goes out: a ``ViewSet``, the
directory mounted read-only at ``/data`` in stage 4.
"""
