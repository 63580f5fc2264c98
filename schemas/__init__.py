"""marshmallow schemas that dump domain objects into the spec's JSON shapes (dump only:
request validation lives in the spec)."""
