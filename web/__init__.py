"""HTTP infrastructure for the REST adapter: validators, middleware, problem responses."""
