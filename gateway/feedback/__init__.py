"""Data-quality feedback: operators report quality problems, providers answer."""
