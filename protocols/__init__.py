"""Adapters for the protocols other than REST (REST is handlers/). errors.py maps the domain
errors for every protocol, REST included."""
