"""Dump functions: domain objects to the spec's JSON shapes (requests are validated by the spec)."""
