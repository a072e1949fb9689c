"""The access matrix: every route the gateway serves, and who may use it.

One table per router: a route ``(method, path)`` maps to ``"public"`` (no
token), ``"any"`` (any signed-in account) or the roles that may call it.
Each router's test file checks its own table, role by role;
``tests/gateway/test_app.py`` checks that ``ALL`` names every operation of
the served OpenAPI document, so a new route without a row fails. The web
console's HTML pages (``/console``) are left out of the OpenAPI document on
purpose; ``tests/gateway/console/test_pages.py`` holds their role matrix.
"""

from __future__ import annotations

Access = dict[tuple[str, str], str | frozenset[str]]

# Identity and the audit log (tests/gateway/test_app.py).
IDENTITY_AND_AUDIT: Access = {
    ("GET", "/v1/health"): "public",
    ("GET", "/v1/me"): "any",
    ("GET", "/v1/notices"): "any",  # gateway.notices
    ("GET", "/v1/accounts"): frozenset({"admin"}),
    ("POST", "/v1/accounts"): frozenset({"admin"}),
    ("POST", "/v1/accounts/{name}/tokens"): frozenset({"admin"}),
    ("DELETE", "/v1/tokens/{token_id}"): frozenset({"admin"}),
    ("POST", "/v1/admin/sweep"): frozenset({"admin"}),  # gateway.sweep
    ("GET", "/v1/audit/verify"): frozenset({"auditor"}),
    ("GET", "/v1/audit/events"): frozenset({"auditor", "provider"}),
    ("POST", "/v1/audit/verify"): frozenset({"auditor"}),
    ("GET", "/v1/audit/checkpoints"): frozenset({"auditor", "provider"}),
    ("POST", "/v1/audit/checkpoints"): frozenset({"admin", "auditor"}),
    ("GET", "/v1/audit/public-key"): frozenset({"admin", "auditor", "provider"}),
}

# Grants (tests/gateway/test_grants.py).
GRANTS: Access = {
    ("GET", "/v1/grants"): frozenset({"operator", "provider", "admin"}),
    ("GET", "/v1/grants/{grant_id}"): frozenset({"admin", "provider"}),
    ("POST", "/v1/grants/{grant_id}/suspend"): frozenset({"admin", "provider"}),
    ("POST", "/v1/grants/{grant_id}/resume"): frozenset({"admin", "provider"}),
    ("POST", "/v1/grants/{grant_id}/revoke"): frozenset({"admin", "provider"}),
    ("POST", "/v1/datasets/{name}/emergency-stop"): frozenset({"admin"}),
}

# Data requests (tests/gateway/test_requests.py).
REQUESTS: Access = {
    ("POST", "/v1/requests"): frozenset({"operator"}),
    ("GET", "/v1/requests"): frozenset({"operator", "provider", "admin"}),
    ("GET", "/v1/requests/{request_id}"): frozenset({"operator", "provider", "admin"}),
    ("POST", "/v1/requests/{request_id}/formal-review"): frozenset({"admin"}),
    ("POST", "/v1/requests/{request_id}/provider-review"): frozenset({"provider"}),
    ("POST", "/v1/requests/{request_id}/supply"): frozenset({"admin", "provider"}),
    ("POST", "/v1/requests/{request_id}/provide"): frozenset({"provider"}),
    ("GET", "/v1/requests/{request_id}/extensions"): frozenset({"operator", "provider", "admin"}),
    ("POST", "/v1/requests/{request_id}/extensions"): frozenset({"provider"}),
    ("POST", "/v1/requests/{request_id}/extensions/{extension_id}/decision"): frozenset({"admin"}),
}

# Datasets and their exposure policies: gateway.providers (tests/gateway/test_providers.py).
PROVIDERS: Access = {
    ("POST", "/v1/datasets"): frozenset({"provider"}),
    ("GET", "/v1/datasets"): frozenset({"provider", "admin", "auditor"}),
    ("GET", "/v1/datasets/{name}"): frozenset({"provider", "admin", "auditor"}),
    ("PUT", "/v1/datasets/{name}/policy"): frozenset({"provider"}),
    ("GET", "/v1/datasets/{name}/policy"): frozenset({"provider", "admin", "auditor", "operator"}),
    ("GET", "/v1/datasets/{name}/policy/versions"): frozenset(
        {"provider", "admin", "auditor", "operator"}
    ),
    ("GET", "/v1/datasets/{name}/policy/diff"): frozenset(
        {"provider", "admin", "auditor", "operator"}
    ),
}

# Privacy-computing products: gateway.he (tests/gateway/test_he_products.py).
HE_PRODUCTS: Access = {
    ("POST", "/v1/he/products"): frozenset({"operator"}),
    ("GET", "/v1/he/products"): "any",
    ("GET", "/v1/he/products/{product_id}"): "any",
    ("POST", "/v1/he/products/{product_id}/decision"): frozenset({"reviewer"}),
    ("POST", "/v1/he/products/{product_id}/withdraw"): frozenset({"operator"}),
    ("POST", "/v1/he/contexts"): frozenset({"consumer"}),
    ("POST", "/v1/he/products/{product_id}/verify"): frozenset({"consumer"}),
    ("POST", "/v1/he/products/{product_id}/score"): frozenset({"consumer"}),
}

# The catalogue (tests/gateway/test_catalog.py).
CATALOG: Access = {
    ("GET", "/v1/catalog"): frozenset({"operator"}),
    ("GET", "/v1/catalog/{view}"): frozenset({"operator"}),
    ("GET", "/v1/catalog/{view}/dummy"): frozenset({"operator"}),
}

# Jobs, reviews and data products (tests/gateway/test_jobs.py).
JOBS: Access = {
    ("POST", "/v1/jobs"): frozenset({"operator"}),
    ("GET", "/v1/jobs"): frozenset({"operator"}),
    ("GET", "/v1/jobs/{job_id}"): frozenset({"operator"}),
    ("GET", "/v1/jobs/{job_id}/logs"): frozenset({"operator"}),
    ("GET", "/v1/jobs/{job_id}/outputs"): frozenset({"operator"}),
    ("GET", "/v1/jobs/{job_id}/outputs/{name}"): frozenset({"operator"}),
    ("POST", "/v1/jobs/{job_id}/cancel"): frozenset({"operator"}),
    ("GET", "/v1/reviews"): frozenset({"reviewer"}),
    ("GET", "/v1/reviews/{job_id}"): frozenset({"reviewer"}),
    ("POST", "/v1/reviews/{job_id}/votes"): frozenset({"reviewer"}),
    ("GET", "/v1/products"): frozenset({"operator", "provider", "reviewer", "admin", "auditor"}),
    ("GET", "/v1/products/{product_id}"): frozenset(
        {"operator", "provider", "reviewer", "admin", "auditor"}
    ),
    ("POST", "/v1/products/{product_id}/renew"): frozenset({"operator"}),
    # Product registration (gateway.products; tests/gateway/products/).
    ("POST", "/v1/products/{product_id}/revoke"): frozenset({"admin"}),
    ("POST", "/v1/products/registrations"): frozenset({"operator"}),
    ("GET", "/v1/products/registrations"): frozenset(
        {"operator", "provider", "reviewer", "admin", "auditor"}
    ),
    ("GET", "/v1/products/registrations/{registration_id}"): frozenset(
        {"operator", "provider", "reviewer", "admin", "auditor"}
    ),
    ("POST", "/v1/products/registrations/{registration_id}/accept"): frozenset({"admin"}),
    ("POST", "/v1/products/registrations/{registration_id}/review"): frozenset({"admin"}),
    ("POST", "/v1/products/registrations/{registration_id}/publicise"): frozenset({"admin"}),
    ("POST", "/v1/products/registrations/{registration_id}/register"): frozenset({"admin"}),
    ("POST", "/v1/products/registrations/{registration_id}/refuse"): frozenset({"admin"}),
    ("POST", "/v1/products/registrations/{registration_id}/objections"): frozenset(
        {"operator", "provider", "reviewer", "admin", "auditor"}
    ),
    ("POST", "/v1/products/objections/{objection_id}/resolve"): frozenset({"admin"}),
}

# Terminations and incidents (tests/gateway/terminations, tests/gateway/incidents).
TERMINATIONS_AND_INCIDENTS: Access = {
    ("POST", "/v1/grants/{grant_id}/terminations"): frozenset({"admin", "provider"}),
    ("POST", "/v1/grants/{grant_id}/termination-requests"): frozenset({"operator"}),
    ("GET", "/v1/terminations"): frozenset({"admin", "provider", "operator"}),
    ("GET", "/v1/terminations/{termination_id}"): frozenset({"admin", "provider", "operator"}),
    ("POST", "/v1/terminations/{termination_id}/approve"): frozenset({"admin"}),
    ("POST", "/v1/terminations/{termination_id}/refuse"): frozenset({"admin"}),
    ("POST", "/v1/terminations/{termination_id}/withdraw"): frozenset(
        {"admin", "provider", "operator"}
    ),
    ("POST", "/v1/incidents"): frozenset({"admin", "provider"}),
    ("GET", "/v1/incidents"): frozenset({"admin", "provider", "auditor"}),
    ("GET", "/v1/incidents/export"): frozenset({"admin", "auditor"}),
    ("GET", "/v1/incidents/{incident_id}"): frozenset({"admin", "provider", "auditor"}),
    ("POST", "/v1/incidents/{incident_id}/actions"): frozenset({"admin", "provider"}),
    ("POST", "/v1/incidents/{incident_id}/resolve"): frozenset({"admin", "provider"}),
}

# Organisations and data-quality feedback (tests/gateway/organisations, tests/gateway/feedback).
ORGANISATIONS_AND_FEEDBACK: Access = {
    ("POST", "/v1/organisations"): frozenset({"admin"}),
    ("GET", "/v1/organisations"): "any",
    ("GET", "/v1/organisations/{organisation_id}"): "any",
    ("PUT", "/v1/organisations/{organisation_id}/members/{account_name}"): frozenset({"admin"}),
    ("DELETE", "/v1/organisations/{organisation_id}/members/{account_name}"): frozenset({"admin"}),
    ("POST", "/v1/feedback"): frozenset({"operator"}),
    ("GET", "/v1/feedback"): frozenset({"operator", "provider", "admin"}),
    ("GET", "/v1/feedback/{issue_id}"): frozenset({"operator", "provider", "admin"}),
    ("POST", "/v1/feedback/{issue_id}/answers"): frozenset({"provider"}),
}

# Metering, pricing and costs, reports, the public portal, metrics (issue 17).
METERING: Access = {  # tests/gateway/metering/test_metering.py
    ("GET", "/v1/metering"): frozenset({"operator", "admin", "auditor"}),
}
PRICING: Access = {  # tests/gateway/pricing/test_access.py
    ("PUT", "/v1/products/{product_id}/price"): frozenset({"operator", "admin"}),
    ("POST", "/v1/products/{product_id}/charges"): frozenset({"operator"}),
    ("GET", "/v1/charges"): frozenset({"operator", "admin", "auditor", "consumer"}),
    ("GET", "/v1/costs"): frozenset({"operator", "admin", "auditor"}),
    ("GET", "/v1/statements/{operator}"): frozenset({"operator", "admin", "auditor"}),
}
REPORTS: Access = {  # tests/gateway/reports/test_reports.py
    ("GET", "/v1/reports/operator/{operator}"): frozenset({"operator", "admin", "auditor"}),
    ("GET", "/v1/reports/provider/{provider}"): frozenset({"provider", "admin", "auditor"}),
    ("GET", "/v1/reports/disclosure"): frozenset({"admin", "auditor"}),
}
PORTAL: Access = {  # tests/gateway/portal/test_portal.py
    ("GET", "/v1/public/products"): "public",
    ("GET", "/v1/public/grants"): "public",
    ("GET", "/v1/public/usage"): "public",
}
METRICS: Access = {  # tests/gateway/metrics/test_metrics.py
    ("GET", "/metrics"): frozenset({"admin", "auditor"}),  # or the metrics token (gateway.metrics)
}

# Every route of the gateway's OpenAPI document.
ALL: Access = {
    **IDENTITY_AND_AUDIT,
    **GRANTS,
    **REQUESTS,
    **PROVIDERS,
    **HE_PRODUCTS,
    **CATALOG,
    **JOBS,
    **TERMINATIONS_AND_INCIDENTS,
    **ORGANISATIONS_AND_FEEDBACK,
    **METERING,
    **PRICING,
    **REPORTS,
    **PORTAL,
    **METRICS,
}


# A value for every path parameter of the routes above: requests refused before a route
# looks its object up (no token, a bad body) need only a well-formed path.
SAMPLE_PATH: dict[str, str] = {
    "account_name": "operator",
    "extension_id": "x-0000000000000000",
    "grant_id": "g-0000000000000000",
    "incident_id": "inc-0000000000000000",
    "issue_id": "fb-0000000000000000",
    "job_id": "job-0000000000000000",
    "name": "residents",
    "objection_id": "obj-0000000000000000",
    "organisation_id": "org-0000000000000000",
    "product_id": "p-0000000000000000",
    "registration_id": "reg-0000000000000000",
    "request_id": "r-0000000000000000",
    "termination_id": "t-0000000000000000",
    "token_id": "000000000000",
    "view": "residents",
    "operator": "operator-1",  # reports and statements
    "provider": "provider-1",
}
