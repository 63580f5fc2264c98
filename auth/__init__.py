"""Credentials → one Principal. JWT issue/verify and the Connexion token-info function."""
