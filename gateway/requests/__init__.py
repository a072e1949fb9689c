"""Data requests: an operator asks, the administrator and the providers review on deadlines."""
