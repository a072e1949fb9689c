"""Stage 5, first step: outputs as the trusted side reads them, one module per source.

Collected files come in. ``sql``: an SQL product's result (ours, a Python
job's published query included) split into the table and its evidence;
``fitted``: a model our code fitted from a published specification;
``python``: a Python job's own files, only those its manifest declares. What
goes out: ``Output``s with their trusted facts, for the rules and the
ledger.
"""
