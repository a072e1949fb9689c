"""Security review of held and blocked jobs: evidence, values, votes."""
