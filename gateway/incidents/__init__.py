"""Security incidents: recorded, acted on, resolved, reported to the implementing agency.

Stage: governing the platform. In order: ``model`` (kinds, severities, states, the
table of moves), ``service`` (create, act, resolve, the emergency stop's record),
``report`` (a period's incidents as JSON and CSV), ``router`` (REST).
"""
