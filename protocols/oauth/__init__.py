"""The OAuth 2.0 authorization server adapter: Authlib glue and the Flask pages (see asgi.py)."""
