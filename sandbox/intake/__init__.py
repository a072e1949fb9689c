"""Stage 0: the providers' data in.

A provider's CSV or Parquet file and its exposure policy's YAML come in.
``names`` checks the column names the file brings; ``ingest`` (with
``encoding`` for CSV text) hashes and converts the file to Parquet, and
``registry`` stores it as a dataset version named by its hash. ``policy``
parses the YAML, checks it against that version's columns and stores it as a
policy version. What goes out: dataset versions (Parquet, never the raw
file) and policy versions, which views, checks and rules read.
``destruction`` destroys a version, or anything built from one, with a
record.
"""
