"""Metering: what jobs and encrypted calls used, per job, grant, product and operator.

``usage`` totals the store's figures for a period (001 art. 34, 004 art. 28:
costs accounted per product); ``router`` serves them at ``GET /v1/metering``.
The figures themselves are taken where the work happens: the kernel's cgroup
accounting of each sandbox (``sandbox.run.backends.cgroups``), the views'
metadata for what an SQL product's query reads (``sandbox.run.metering``), the
evaluation time of each encrypted call (``gateway.he.calls``).
"""
