"""Jobs: submission under a grant, the worker pool that runs them, outcomes and outputs."""
