"""Stage 4, host side: run a job's steps in fresh hardened containers and collect their outputs.

In the order a job passes them:

- ``steps``: what one sandbox runs (a ``Plan`` that passed the static checks)
  and running it (``Sandboxes.run`` writes the job directory, then calls the
  backend);
- ``backends``: creates the container, runs the step in it and classifies how
  it ended (``base`` is the contract, ``docker`` the hardened engine backend);
- ``collect``: reads ``/output`` from the backend's tar stream as hostile input;
- ``recompute``: a Python job's specifications (``publish_query``,
  ``publish_model``) computed again by the trusted side, each in a step of its own.

What goes out: an ``Execution`` (exit class, resource use, capped and withheld
logs) and a ``Collection`` of regular files per step, for stage 5 (``judge/``).
"""
