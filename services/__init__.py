"""Protocol-neutral use cases. No HTTP, no serialization; domain errors carry no status codes."""
