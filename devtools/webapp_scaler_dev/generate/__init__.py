"""Generators of committed files; a unit test re-runs each and fails when its output is stale."""
