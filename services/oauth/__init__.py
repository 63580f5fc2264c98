"""The OAuth 2.0 authorization server's use cases (clients, codes, refresh families, device
codes, revocation, introspection); framework-free. The Authlib/Flask adapter is
protocols/oauth."""
