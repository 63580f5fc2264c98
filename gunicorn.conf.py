"""gunicorn settings for production: ``make serve-prod`` and the Docker image.

gunicorn reads ``./gunicorn.conf.py`` from the directory it starts in (the repository root, or
``/app`` in the image); command-line flags override what is set here.

- Workers: ``WEB_CONCURRENCY`` (gunicorn's convention; ``make serve-prod WORKERS=N`` passes
  ``-w N``), else one per CPU this process may run on.
- Graceful shutdown: SIGTERM to the master closes the listening sockets (new connections are
  refused) and asks each worker to finish what it serves: in-flight requests and open chat
  streams complete, then the workers run the app's shutdown and exit, the master exits 0. Whatever
  still runs after ``PETSTORE_GRACEFUL_TIMEOUT`` seconds (default 25, below Kubernetes' 30 s
  grace period) is killed. SIGINT and SIGQUIT stop at once.
"""

from __future__ import annotations

import os
from typing import Any


def cpu_count() -> int:
    """CPUs this process may run on (its affinity mask), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


wsgi_app = "app:app_from_env()"
worker_class = "uvicorn_worker.UvicornWorker"
workers = _int("WEB_CONCURRENCY", cpu_count())
graceful_timeout = _int("PETSTORE_GRACEFUL_TIMEOUT", 25)
keepalive = 5
# Requests are logged by the app (one JSON line each, with its X-Request-ID); gunicorn logs only
# its own events (workers booting, exiting, killed) to stderr.
accesslog = None
errorlog = "-"


def on_starting(server: Any) -> None:
    """Tell the app how many workers serve it (multiprocess /metrics, the no-Redis warning):
    the workers inherit the master's environment, ``-w`` included."""
    os.environ["PETSTORE_WORKERS"] = str(server.cfg.workers)
