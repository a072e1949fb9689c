"""Prometheus metrics for the operations team (``GET /metrics``; not public).

``registry`` holds one app's metrics: its own ``CollectorRegistry`` (never the
process-wide default: two apps in one process share nothing), the counters and
histograms observed when things happen (refusals, job stages). ``collector``
reads the store at scrape time for the gauges (jobs, queues, the audit chain,
encrypted calls); ``containers`` asks the Docker engine for the sandbox's
running containers; ``router`` serves the text format to an administrator, an
auditor or the bearer of ``DSR_GATEWAY_METRICS_TOKEN``.
"""
