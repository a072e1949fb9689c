"""The administrators' routes: accounts and tokens."""
