"""Throughput benchmark harness: ``python -m bench.run`` (called by ``make bench``).

Compares the Pet Store API (validation on and off) with a bare Starlette ceiling and an idiomatic
FastAPI + SQLAlchemy peer over the same SQLite rows, loading each with wrk on loopback.
"""
