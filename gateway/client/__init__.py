"""``dsr`` as a client of the gateway's REST API, for every role.

Commands by role (each takes ``--server``, ``--token``, ``--profile`` and,
where it prints data, ``--json``: after the command, or before it on its
group, ``dsr jobs --server URL list``; see :mod:`gateway.client.options`):

- everyone: ``dsr login --server URL --token T``, ``dsr whoami``, ``dsr
  notices list`` (what the gateway told you: overdue steps, terms ending)
- operators: ``dsr catalog list/show/dummy``, ``dsr jobs submit/status/wait/
  list/logs/outputs/cancel``, ``dsr requests create/list/show``,
  ``dsr dev fetch/run`` (local runs on dummy data), ``dsr products
  apply/applications/list/show/renew`` (registration of data products),
  ``dsr he products create/list/show/withdraw`` (privacy-computing
  products), ``dsr terminations request`` (ending supply), ``dsr feedback
  file/list/show`` (data-quality issues)
- providers: ``dsr datasets register/list/show``, ``dsr policies apply/show/
  versions/diff``, ``dsr requests review/extend/provide/supply``, ``dsr
  grants list/show/suspend/resume/revoke`` (a stop may carry
  ``--rectify-days``), ``dsr terminations propose/withdraw``, ``dsr
  incidents create/update/resolve``, ``dsr feedback answer``, ``dsr audit
  list/export``
- security reviewers: ``dsr reviews list/show/approve/deny``, ``dsr he products
  list/show/approve/deny``
- consumers: ``dsr he keys/verify/score`` (:mod:`gateway.he.cli`)
- administrators: ``dsr accounts create/list``, ``dsr tokens issue/revoke``,
  ``dsr orgs create/list/show/assign``, ``dsr requests review`` (the formal
  review) and ``decide-extension``, ``dsr products step/refuse/resolve/
  revoke`` (the registration body), ``dsr terminations approve/refuse``,
  ``dsr incidents list/export``, ``dsr emergency-stop``, ``dsr sweep``
- auditors: ``dsr audit verify/export/list``, ``dsr audit checkpoint/checkpoints/
  public-key`` (signed checkpoints of the chain's head, :mod:`gateway.client.checkpoints`)

``accounts``, ``tokens`` and ``audit verify/export`` also work on the
gateway's local store (the bootstrap of the first administrator): a command
talks to the gateway when one is named (``--server``, ``DSR_SERVER`` or the
config file) and opens the local store otherwise; ``--local`` forces the
store (see :mod:`gateway.client.admin`). Where the server and token come
from: :mod:`gateway.client.config`. Exit codes: :mod:`gateway.client.errors`
(0 ok, 1 refused or the job ended badly, 2 usage, 3 unreachable, 4 auth
failed, 5 wait timed out).
"""

from __future__ import annotations

import typer


def register(app: typer.Typer, audit_app: typer.Typer) -> None:
    """Add the client's commands to ``dsr`` (``audit list`` joins the audit group)."""
    from gateway.client import (
        admin,
        catalog,
        data_requests,
        dev,
        feedback,
        incidents,
        notices,
        operators,
        organisations,
        products,
        providers,
        reviewers,
        terminations,
    )
    from gateway.sweep.cli import sweep

    app.command("login")(admin.login)
    app.command("whoami")(admin.whoami)
    app.add_typer(catalog.catalog_app, name="catalog")
    app.add_typer(operators.jobs_app, name="jobs")
    app.add_typer(data_requests.requests_app, name="requests")
    app.add_typer(providers.datasets_app, name="datasets")
    app.add_typer(providers.policies_app, name="policies")
    app.add_typer(providers.grants_app, name="grants")
    app.command("emergency-stop")(providers.emergency_stop)
    app.add_typer(reviewers.reviews_app, name="reviews")
    app.add_typer(products.products_app, name="products")
    app.add_typer(dev.dev_app, name="dev")
    audit_app.command("list")(admin.audit_list)
    app.add_typer(notices.notices_app, name="notices")
    app.add_typer(terminations.terminations_app, name="terminations")
    app.add_typer(incidents.incidents_app, name="incidents")
    app.add_typer(organisations.orgs_app, name="orgs")
    app.add_typer(feedback.feedback_app, name="feedback")
    app.command("sweep")(sweep)  # the gateway's API, or the local store (for cron)
    from gateway.client.metering import metering

    app.command("metering")(metering)
    from gateway.client import pricing

    pricing.register(app, products.products_app)  # products price, charges, costs, statements
    from gateway.client.reports import reports_app

    app.add_typer(reports_app, name="reports")
