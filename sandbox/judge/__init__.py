"""Stages 5 and 6: a job's outputs read, checked against trusted facts and rules, decided.

The modules, in the order a job passes them:

- ``bounded``: the checker process a job's checking runs in, killed at its
  memory and time limits (the gateway's process never grows);
- ``task``: the job as the pipeline hands it over (``JudgeTask``) and
  ``judge``, which takes it through the steps below;
- ``outputs/``: what the job produced, read on the trusted side: ``sql``
  (an SQL product's table and its evidence), ``fitted`` (a model our code
  fitted), ``python`` (a Python job's own files, as its manifest declares);
- ``ledger_keys``: the entities behind each SQL cell as ledger keys;
- ``facts``: the strictest thresholds of the policies and the trusted facts
  of the views each output derives from;
- ``grading``: those thresholds raised by the grading table to the highest
  security level an output touches (k multiplied; important and core data held
  for a reviewer);
- ``fingerprints/``: every form of every identifier, for the leakage rule;
- ``types`` and ``rules/``: what the rules take and give, and the output
  rules themselves, one small pure function each;
- ``verdict``: every rule and the ledger's check over the job, its
  ``Decision`` (released, held or blocked) in a ``JobReport``, and the
  ledger's record when a release commits;
- ``ledger``: the differencing ledger, the exact entity sets of released cells.
"""
