"""REST adapter: Connexion operation targets, one module per spec tag."""
