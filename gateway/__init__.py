"""The gateway: the FastAPI service in front of the sandbox runtime.

Routers per audience (operators, providers, reviews, audit, admin), Casbin
scope policy, the job lifecycle and the hash-chained audit log live here.
"""
