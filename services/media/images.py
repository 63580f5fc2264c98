"""Pet images: upload (validate, re-encode, store, record) and read back.

Memory: decoding is what costs memory (a 24-megapixel photo is ~72 MB of pixels), so at most
``decode_slots`` uploads are read and decoded at once (a capacity limiter in front of the worker
threads). An upload waiting for a slot holds no bytes in memory: its body was spooled to a
temporary file while it streamed in, and it is read (one copy) only inside the slot.

Consistency: files are written before the row, each atomically, under content-addressed keys;
a failure after the write removes the files this upload created, so neither a partial file
nor a row pointing at a missing file is left. The pet row is updated in one write transaction
under its row lock (``BEGIN IMMEDIATE`` on SQLite, ``SELECT ... FOR UPDATE`` on PostgreSQL), so
concurrent uploads to one pet all end up in ``photos``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import IO

import anyio
from PIL import Image
from sqlalchemy.orm import Session

from models import Pet
from models.base import utcnow
from models.database import Database
from services.catalogue.pets import load_pet, require_writer
from services.media.imaging import ImageLimits, ProcessedImage, process, read_limited
from services.media.store import (
    CONTENT_TYPES,
    IMAGE_NAME,
    MediaStore,
    image_key,
    pet_prefix,
)
from services.shared.errors import Conflict, ImageMissing, NotFound
from services.shared.principal import Principal

MAX_PHOTOS = 20


@dataclass(frozen=True)
class StoredImage:
    name: str
    created: bool  # False when the same image was already one of the pet's photos


@dataclass(frozen=True)
class ImageFile:
    data: bytes | None  # None when only existence was asked for
    content_type: str
    digest: str  # the file's SHA-256 (and thumbnail size): a strong validator for caches


class ImageService:
    def __init__(
        self, db: Database, media: MediaStore, limits: ImageLimits, decode_slots: int
    ) -> None:
        self.db = db
        self.media = media
        self.limits = limits
        self._slots = anyio.CapacityLimiter(decode_slots)
        # Pillow's own bomb guard as a second line behind check_geometry: it warns above this
        # and refuses above twice this, process-wide (its default is 89 Mpx).
        Image.MAX_IMAGE_PIXELS = limits.max_pixels

    def _process(self, file: IO[bytes], declared: str | None) -> ProcessedImage:
        return process(read_limited(file, self.limits.max_bytes), declared, self.limits)

    def _store(self, pet_id: uuid.UUID, image: ProcessedImage) -> list[str]:
        """Write every rendition; return the keys this call created (for clean-up)."""
        created = []
        try:
            for rendition in image.renditions:
                key = image_key(pet_id, rendition.name)
                if self.media.exists(key):
                    continue
                self.media.put(key, rendition.data, rendition.content_type)
                created.append(key)
        except BaseException:
            self._remove(created)
            raise
        return created

    def _remove(self, keys: list[str]) -> None:
        for key in keys:
            self.media.delete(key)

    async def upload(
        self,
        principal: Principal,
        pet_id: uuid.UUID,
        file: IO[bytes] | None,
        declared_type: str | None,
    ) -> StoredImage:
        """Raises Forbidden, NotFound, Conflict (photo limit) and every ImageRejected kind."""
        require_writer(principal)
        if file is None:
            raise ImageMissing(
                "The multipart body has no file part named 'file' (a part with a filename).",
                "required",
            )
        tenant = principal.tenant

        def check(session: Session) -> None:
            _check_room(load_pet(session, pet_id))

        await self.db.run(tenant, check)
        image = await anyio.to_thread.run_sync(
            self._process, file, declared_type, limiter=self._slots
        )
        created = await anyio.to_thread.run_sync(self._store, pet_id, image)

        def record(session: Session) -> bool:
            pet = load_pet(session, pet_id, lock=True)
            if image.name in (pet.photos or ()):
                return False
            _check_room(pet)
            pet.photos = [*(pet.photos or ()), image.name]
            pet.version += 1
            pet.updated_at = utcnow()
            return True

        try:
            added = await self.db.run(tenant, record, write=True)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._remove, created)
            raise
        return StoredImage(image.name, added)

    async def delete_pet_files(self, pet_id: uuid.UUID) -> None:
        """Every file of a deleted pet (catalogue.pets.PetFiles)."""
        await anyio.to_thread.run_sync(self.media.delete_prefix, pet_prefix(pet_id))

    async def open(
        self, principal: Principal, pet_id: uuid.UUID, name: str, *, body: bool = True
    ) -> ImageFile:
        """One stored image or thumbnail of a pet in the caller's tenant. Raises NotFound (the
        same for a pet of another tenant, an unknown pet and an unknown image)."""
        if not IMAGE_NAME.match(name):
            raise NotFound("image", name)

        def pet_is_visible(session: Session) -> bool:
            return session.get(Pet, pet_id) is not None  # the tenant filter applies

        if not await self.db.run(principal.tenant, pet_is_visible):
            raise NotFound("image", name)
        key = image_key(pet_id, name)
        digest = name.rsplit(".", 1)[0]
        content_type = CONTENT_TYPES[name.rsplit(".", 1)[1]]
        if not body:
            if not await anyio.to_thread.run_sync(self.media.exists, key):
                raise NotFound("image", name)
            return ImageFile(None, content_type, digest)
        data = await anyio.to_thread.run_sync(self.media.get, key)
        if data is None:
            raise NotFound("image", name)
        return ImageFile(data, content_type, digest)


def _check_room(pet: Pet) -> None:
    if len(pet.photos or ()) >= MAX_PHOTOS:
        raise Conflict(f"The pet already has {MAX_PHOTOS} photos.", field="file", code="limit")
