"""The data-sandbox runtime: a job's way from the providers' data to a released output.

The packages, in the order a job passes them (``ls sandbox/`` shows them so):

- ``intake/``     stage 0: providers' files in (registry, ingest, names, exposure
                  policy, destruction when a grant or a dataset ends)
- (stage 1, the grant's scope, is the gateway's: ``gateway/scope/``)
- ``precheck/``   stage 2: static checks before anything runs (``screen`` for
                  Python, ``sql/`` for SQL: grammar, lineage, the evidence rewrite)
- ``views/``      stage 3: the grant's read-only views, and their dummy twins
- ``run/``        stage 4, host side: a fresh hardened container per step
                  (``steps``, ``backends/``), ``collect`` takes the outputs out as
                  hostile input, ``recompute`` computes a Python job's specifications
- ``container/``  what runs inside that container, and the only code the runner
                  image holds (runner, guard, SQL runner, model fitter, SDK, HE evaluator)
- ``judge/``      stages 5-6: read the outputs, compute trusted facts, run the
                  rules and the differencing ledger, decide (in a bounded checker)
- ``he/``         the encrypted products' trusted side (the consumer's client)
- ``synthetic/``  the demo city and realistic-in-form identifiers (no real person)

``pipeline.py`` drives the stages for one job; ``settings.py``, ``errors.py``,
``sqltext.py`` (the one way names enter SQL text) and ``fsutil.py`` are shared;
``sdk.py`` is the analysts' import name (``from sandbox.sdk import ...``) for
``container/sdk/``; ``cli.py`` is the ``dsr`` commands of this package.
"""

__version__ = "0.1.0"
