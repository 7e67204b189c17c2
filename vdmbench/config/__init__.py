"""Schemas of what users write: suites, model configs and run options."""
