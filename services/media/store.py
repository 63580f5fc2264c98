"""Where image files live: one interface, implemented in infra/media.py (a local directory or an
S3-compatible bucket) and injected through web.container.

Keys are ``pets/<pet id>/<sha256>[-<size>].<ext>``: content-addressed within a pet, so an upload
that is repeated writes the same key, and deleting a pet is deleting one prefix. Every ``put``
is atomic: a reader sees the whole object or none (temporary file + rename, or one S3 PUT)."""

from __future__ import annotations

import re
import uuid
from typing import Protocol

IMAGE_NAME = re.compile(r"^[0-9a-f]{64}(-(128|512)\.webp|\.(jpg|png|webp))$")
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


class MediaStore(Protocol):
    """Blocking calls: the services run them in worker threads."""

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> None: ...


def pet_prefix(pet_id: uuid.UUID) -> str:
    return f"pets/{pet_id}/"


def image_key(pet_id: uuid.UUID, name: str) -> str:
    if not IMAGE_NAME.match(name):
        raise ValueError(f"not an image name: {name!r}")
    return f"{pet_prefix(pet_id)}{name}"
