"""Adapters to external infrastructure (Redis, in-process stores). Injected, never imported by
services."""
