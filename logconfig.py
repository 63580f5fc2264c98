"""Structured logs: one JSON object per line on stderr (PETSTORE_LOG_JSON=0 for plain text)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import orjson

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(json_lines: bool = True, level: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("PETSTORE_LOG_LEVEL", "INFO"))
    # Connexion logs every client validation failure (a 4xx the client already got) at
    # warning/error, and a notice per request for multi-media-type bodies: keep them out.
    logging.getLogger("connexion.validators").setLevel(logging.CRITICAL)
    logging.getLogger("connexion.operations").setLevel(logging.ERROR)
    logging.getLogger("connexion.middleware.exceptions").setLevel(logging.ERROR)
