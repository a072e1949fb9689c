"""The encrypted products' evaluator and what it shares with the consumer's client."""
