"""Terminations: ending a grant as a process, with a stated basis, a notice period, the
data authority's approval, notices to everyone concerned, then revocation.

Stage: governing a grant. The data flow, in order: ``model`` (the states and the one
table of moves), ``service`` (propose, request, decide, withdraw, take effect),
``rectification`` (a missed rectification deadline raises a proposal), ``sweep`` (the
sweep's tasks), ``router`` (REST).
"""
