"""The sweep: what the gateway does when its time comes, without waiting for use.

- ``tasks``: the task contract (``SweepContext``, ``Task``) and every task, in order;
- ``expiry`` (``grants.expire``), ``leftovers`` (``grants.leftovers``) and
  ``term_notice`` (``grants.term_notice``): the grants' tasks; the other domains
  keep theirs beside their code;
- ``run``: one sweep, every task once, failures contained, audited ``sweep.run``;
- ``scheduler``: the gateway's thread sweeping every ``sweep_every_seconds``;
- ``router``: its lifespan in the app, and ``POST /v1/admin/sweep``;
- ``cli``: ``dsr sweep``, one sweep for cron (the gateway's API or the local store).
"""
