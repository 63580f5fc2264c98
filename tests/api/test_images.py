"""Upload Pet Image and Get Pet Image through the Connexion app with real multipart requests.

Every file is built here with Pillow or by hand (no binary fixtures). Each refused file is checked
for its status, its problem body (the reason code in ``errors[]``) and that nothing was stored:
no file under the media directory and no new entry in the pet's ``photos``."""

from __future__ import annotations

import io
import json
import struct
import uuid
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from settings import Settings
from tests.conftest import Api

MAX = 5 * 1024 * 1024
ORIENTATION, GPS_IFD, MAKE = 0x0112, 0x8825, 0x010F


# ----------------------------------------------------------------------------- file builders


def jpeg(size: tuple[int, int] = (64, 32), *, orientation: int | None = None, **save: Any) -> bytes:
    im = Image.new("RGB", size, (200, 30, 30))
    for x in range(size[0] // 2):  # a left half in another colour, to see the rotation
        for y in range(size[1]):
            im.putpixel((x, y), (20, 30, 220))
    exif = Image.Exif()
    exif[MAKE] = "SecretCam"
    exif[GPS_IFD] = {1: "N", 2: (52.0, 22.0, 1.0)}
    if orientation:
        exif[ORIENTATION] = orientation
    out = io.BytesIO()
    im.save(out, "JPEG", exif=exif, quality=90, **save)
    return out.getvalue()


def png(size: tuple[int, int] = (40, 30), mode: str = "RGBA", **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (10, 200, 10, 128) if mode == "RGBA" else (10, 200, 10)).save(
        out, "PNG", **save
    )
    return out.getvalue()


def webp(size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 10, 200)).save(out, "WEBP")
    return out.getvalue()


def animated(fmt: str, frames: int) -> bytes:
    colours = [(i * 40 % 256, i * 90 % 256, 255 - i) for i in range(frames)]
    images = [Image.new("RGB", (16, 16), colour) for colour in colours]
    out = io.BytesIO()
    images[0].save(out, fmt, save_all=True, append_images=images[1:], duration=40)
    return out.getvalue()


def other(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, fmt)
    return out.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + png_chunk(b"IEND", b"")
    )


def png_with_text(size: int) -> bytes:
    body = png()
    iend = body.rindex(b"IEND") - 4
    return body[:iend] + png_chunk(b"tEXt", b"Comment\x00" + b"x" * size) + body[iend:]


def corrupt_png() -> bytes:
    body = bytearray(png((64, 64), "RGB"))
    start = body.index(b"IDAT") + 4
    body[start : start + 20] = b"\xff" * 20  # zlib stream damaged; CRC left as it was
    return bytes(body)


def zip_bytes() -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("payload.sh", "#!/bin/sh\necho pwned\n")
    return out.getvalue()


# ----------------------------------------------------------------------------- helpers


@pytest.fixture
def pet(api: Api) -> dict[str, Any]:
    return api.create_pet(api.admin_token())


def upload(
    api: Api,
    pet_id: str,
    data: bytes | None,
    *,
    content_type: str = "image/jpeg",
    filename: str = "photo.jpg",
    token: str | None = None,
    fields: dict[str, str] | None = None,
) -> Any:
    fields = fields if fields is not None else {"additionalMetadata": "from the test"}
    files: dict[str, Any] = {k: (None, v) for k, v in fields.items()}  # multipart even without file
    if data is not None:
        files["file"] = (filename, data, content_type)
    return api.request("POST", f"/pets/{pet_id}/images", token or api.admin_token(), files=files)


def stored_files(settings: Settings, pet_id: str) -> list[str]:
    root = Path(settings.media_dir) / "pets" / pet_id
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def photos(api: Api, pet_id: str) -> list[str]:
    result: list[str] = api.request("GET", f"/pets/{pet_id}").json()["photos"]
    return result


def assert_refused(
    api: Api, settings: Settings, pet: dict[str, Any], r: Any, status: int, code: str
) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status
    assert body["instance"] == f"/v1/pets/{pet['id']}/images"
    assert body["errors"][0]["field"] == "file"
    assert body["errors"][0]["code"] == code, body
    assert body["detail"] == body["errors"][0]["message"]
    assert stored_files(settings, pet["id"]) == []
    assert photos(api, pet["id"]) == []


def pixel(im: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = im.getpixel(xy)
    assert isinstance(value, tuple)
    return value


def open_image(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


# ----------------------------------------------------------------------------- accepted files


class TestUpload:
    def test_201_stores_a_clean_upright_copy_and_thumbnails(
        self, api: Api, settings: Settings, pet: dict[str, Any]
    ) -> None:
        original = jpeg((64, 32), orientation=6)
        assert Image.open(io.BytesIO(original)).getexif()[MAKE] == "SecretCam"
        r = upload(api, pet["id"], original)
        assert r.status_code == 201, r.text
        url = r.headers["location"]
        assert r.json() == {"code": 201, "type": "image", "message": url}
        name = url.rsplit("/", 1)[1]
        digest = name.removesuffix(".jpg")
        assert url == f"http://testserver/v1/pets/{pet['id']}/images/{name}"
        assert photos(api, pet["id"]) == [url]
        assert stored_files(settings, pet["id"]) == sorted(
            [name, f"{digest}-128.webp", f"{digest}-512.webp"]
        )

        got = api.client.get(url, headers=api.headers())
        assert got.status_code == 200
        assert got.headers["content-type"] == "image/jpeg"
        assert got.headers["etag"] == f'"{digest}"'
        assert got.headers["cache-control"] == "private, max-age=31536000, immutable"
        assert got.headers["x-content-type-options"] == "nosniff"
        clean = open_image(got.content)
        assert clean.format == "JPEG"
        assert clean.size == (32, 64)  # orientation 6 applied: turned upright
        assert dict(clean.getexif()) == {}  # no camera, no GPS, no orientation left
        assert "exif" not in clean.info
        assert b"SecretCam" not in got.content
        # the left (blue) half of the sideways original is now the top half
        assert pixel(clean, (16, 5))[2] > 150
        assert pixel(clean, (16, 58))[0] > 150

        for side in (512, 128):
            thumb = api.client.get(url.replace(".jpg", f"-{side}.webp"), headers=api.headers())
            assert thumb.status_code == 200
            assert thumb.headers["content-type"] == "image/webp"
            assert thumb.headers["etag"] == f'"{digest}-{side}"'
            assert thumb.headers["x-content-type-options"] == "nosniff"
            im = open_image(thumb.content)
            assert im.format == "WEBP"
            assert max(im.size) <= side
            assert "exif" not in im.info

    def test_large_photo_gets_bounded_thumbnails(self, api: Api, pet: dict[str, Any]) -> None:
        r = upload(api, pet["id"], jpeg((1600, 900)))
        assert r.status_code == 201, r.text
        url = r.headers["location"]
        assert open_image(api.client.get(url, headers=api.headers()).content).size == (1600, 900)
        assert open_image(
            api.client.get(url.replace(".jpg", "-512.webp"), headers=api.headers()).content
        ).size == (
            512,
            288,
        )
        assert open_image(
            api.client.get(url.replace(".jpg", "-128.webp"), headers=api.headers()).content
        ).size == (
            128,
            72,
        )

    def test_png_keeps_alpha_and_loses_text_chunks(self, api: Api, pet: dict[str, Any]) -> None:
        from PIL import PngImagePlugin

        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", "secret location")
        r = upload(api, pet["id"], png(pnginfo=info), content_type="image/png", filename="a.png")
        assert r.status_code == 201, r.text
        got = api.client.get(r.headers["location"], headers=api.headers())
        assert got.headers["content-type"] == "image/png"
        im = open_image(got.content)
        assert im.mode == "RGBA"
        assert pixel(im, (0, 0))[3] == 128
        assert getattr(im, "text", {}) == {}
        assert b"secret location" not in got.content

    def test_webp_with_a_generic_declared_type(self, api: Api, pet: dict[str, Any]) -> None:
        r = upload(
            api,
            pet["id"],
            webp(),
            content_type="application/octet-stream",
            filename="not-really.gif",
        )
        assert r.status_code == 201, r.text
        assert r.headers["location"].endswith(".webp")
        got = api.client.get(r.headers["location"], headers=api.headers())
        assert got.headers["content-type"] == "image/webp"

    def test_same_image_twice_is_one_photo(
        self, api: Api, settings: Settings, pet: dict[str, Any]
    ) -> None:
        first = upload(api, pet["id"], jpeg())
        second = upload(api, pet["id"], jpeg())
        assert first.status_code == second.status_code == 201
        assert first.headers["location"] == second.headers["location"]
        assert photos(api, pet["id"]) == [first.headers["location"]]
        assert len(stored_files(settings, pet["id"])) == 3

    def test_concurrent_uploads_to_one_pet_all_land(
        self, api: Api, settings: Settings, pet: dict[str, Any]
    ) -> None:
        token = api.admin_token()
        bodies = [jpeg((40 + i, 30)) for i in range(6)]
        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(lambda b: upload(api, pet["id"], b, token=token), bodies))
        assert [r.status_code for r in results] == [201] * 6
        assert sorted(photos(api, pet["id"])) == sorted(r.headers["location"] for r in results)
        assert len(stored_files(settings, pet["id"])) == 18
        got = api.request("GET", f"/pets/{pet['id']}")
        assert got.headers["etag"].endswith('-7"')  # created at version 1, six updates

    def test_delete_pet_deletes_its_files(
        self, api: Api, settings: Settings, pet: dict[str, Any]
    ) -> None:
        url = upload(api, pet["id"], jpeg()).headers["location"]
        assert stored_files(settings, pet["id"])
        assert api.request("DELETE", f"/pets/{pet['id']}", api.admin_token()).status_code == 204
        assert stored_files(settings, pet["id"]) == []
        assert not (Path(settings.media_dir) / "pets" / pet["id"]).exists()
        assert api.client.get(url, headers=api.headers()).status_code == 404

    def test_photo_limit_is_409_and_stores_nothing(
        self, api: Api, settings: Settings, pet: dict[str, Any]
    ) -> None:
        for i in range(20):
            r = upload(api, pet["id"], png((8 + i, 8), "RGB"), content_type="image/png")
            assert r.status_code == 201
        before = stored_files(settings, pet["id"])
        r = upload(api, pet["id"], jpeg())
        assert r.status_code == 409
        assert r.json()["errors"][0]["field"] == "file"
        assert stored_files(settings, pet["id"]) == before
        assert len(photos(api, pet["id"])) == 20


def saved(im: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **options)
    return out.getvalue()


def noise(size: tuple[int, int] = (300, 200)) -> Image.Image:
    return Image.effect_noise(size, 50).convert("RGB")


ACCEPTED: list[tuple[str, Callable[[], bytes], str, str]] = [
    ("progressive jpeg", lambda: saved(noise(), "JPEG", progressive=True), "JPEG", "RGB"),
    (
        "jpeg with restart markers",
        lambda: saved(noise(), "JPEG", restart_marker_blocks=4),
        "JPEG",
        "RGB",
    ),
    ("grayscale jpeg", lambda: saved(noise().convert("L"), "JPEG"), "JPEG", "L"),
    ("cmyk jpeg", lambda: saved(noise().convert("CMYK"), "JPEG"), "JPEG", "RGB"),
    ("jpeg with zero padding", lambda: saved(noise(), "JPEG") + b"\x00" * 64, "JPEG", "RGB"),
    ("16-bit png", lambda: saved(Image.new("I;16", (50, 40), 3000), "PNG"), "PNG", "I;16"),
    (
        "palette png with transparency",
        lambda: saved(Image.new("P", (50, 40), 1), "PNG", transparency=1),
        "PNG",
        "P",
    ),
    (
        "lossless webp with alpha",
        lambda: saved(Image.new("RGBA", (50, 40), (1, 2, 3, 100)), "WEBP", lossless=True),
        "WEBP",
        "RGBA",
    ),
    ("animated webp, 3 frames (first kept)", lambda: animated("WEBP", 3), "WEBP", "RGB"),
]


@pytest.mark.parametrize(
    ("build", "fmt", "mode"), [pytest.param(*case[1:], id=case[0]) for case in ACCEPTED]
)
def test_accepted_variant(
    api: Api, pet: dict[str, Any], build: Callable[[], bytes], fmt: str, mode: str
) -> None:
    r = upload(api, pet["id"], build(), content_type="application/octet-stream")
    assert r.status_code == 201, r.text
    im = open_image(api.client.get(r.headers["location"], headers=api.headers()).content)
    assert im.format == fmt
    assert im.mode == mode
    assert getattr(im, "n_frames", 1) == 1


# ----------------------------------------------------------------------------- refused files

PIXELS, FRAMES = "too_many_pixels", "too_many_frames"
REFUSED: list[tuple[str, Callable[[], bytes], str, int, str]] = [
    ("gif", lambda: other("GIF"), "image/gif", 415, "unsupported_type"),
    ("bmp", lambda: other("BMP"), "image/bmp", 415, "unsupported_type"),
    ("tiff", lambda: other("TIFF"), "image/tiff", 415, "unsupported_type"),
    (
        "svg",
        lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "image/svg+xml",
        415,
        "unsupported_type",
    ),
    (
        "heic",
        lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64,
        "image/heic",
        415,
        "unsupported_type",
    ),
    ("html", lambda: b"<html><body>hi</body></html>", "image/jpeg", 415, "unsupported_type"),
    ("declared png, bytes jpeg", jpeg, "image/png", 415, "type_mismatch"),
    ("declared jpeg, bytes webp", webp, "image/jpeg", 415, "type_mismatch"),
    ("empty", lambda: b"", "image/jpeg", 400, "empty"),
    ("truncated jpeg", lambda: jpeg((300, 200))[:-400], "image/jpeg", 422, "truncated"),
    (
        "jpeg cut inside the scan, EOI re-added",
        lambda: jpeg((300, 200))[:700] + b"\xff\xd9",
        "image/jpeg",
        422,
        "truncated",
    ),
    ("truncated png", lambda: png((300, 200), "RGB")[:-60], "image/png", 422, "truncated"),
    ("corrupt png data", corrupt_png, "image/png", 422, "corrupt"),
    ("bomb 10000x10000", lambda: png_declaring(10_000, 10_000), "image/png", 422, PIXELS),
    ("bomb 7000x7000", lambda: png_declaring(7_000, 7_000), "image/png", 422, PIXELS),
    ("strip 1x100000", lambda: png_declaring(1, 100_000), "image/png", 422, "too_wide"),
    ("strip 5000x1", lambda: png_declaring(5_000, 1), "image/png", 422, "aspect_ratio"),
    ("animated webp, 60 frames", lambda: animated("WEBP", 60), "image/webp", 422, FRAMES),
    ("animated png, 60 frames", lambda: animated("PNG", 60), "image/png", 422, FRAMES),
    ("jpeg + zip", lambda: jpeg() + zip_bytes(), "image/jpeg", 422, "trailing_data"),
    (
        "jpeg + html",
        lambda: jpeg() + b"<html><script>alert(1)</script></html>",
        "image/jpeg",
        422,
        "trailing_data",
    ),
    ("png + script", lambda: png() + b"#!/bin/sh\nrm -rf /\n", "image/png", 422, "trailing_data"),
    ("webp + zip", lambda: webp() + zip_bytes(), "image/webp", 422, "trailing_data"),
    (
        "jpeg with 600 KB of ICC segments",
        lambda: jpeg(icc_profile=b"\x00" * 600_000),
        "image/jpeg",
        422,
        "metadata_too_large",
    ),
    (
        "png with a 600 KB text chunk",
        lambda: png_with_text(600_000),
        "image/png",
        422,
        "metadata_too_large",
    ),
]


@pytest.mark.parametrize(
    ("build", "content_type", "status", "code"),
    [pytest.param(*case[1:], id=case[0]) for case in REFUSED],
)
def test_refused_file(
    api: Api,
    settings: Settings,
    pet: dict[str, Any],
    build: Callable[[], bytes],
    content_type: str,
    status: int,
    code: str,
) -> None:
    r = upload(api, pet["id"], build(), content_type=content_type)
    assert_refused(api, settings, pet, r, status, code)


def test_file_just_over_5_mib_is_413(api: Api, settings: Settings, pet: dict[str, Any]) -> None:
    data = jpeg() + b"\x00" * (MAX + 1 - len(jpeg()))
    r = upload(api, pet["id"], data)
    assert_refused(api, settings, pet, r, 413, "too_large")


def test_body_over_the_route_limit_is_413_from_content_length(
    api: Api, settings: Settings, pet: dict[str, Any]
) -> None:
    r = upload(api, pet["id"], b"\xff\xd8\xff" + b"\x00" * (MAX + 100 * 1024))
    assert r.status_code == 413
    assert r.json()["detail"] == f"The request body exceeds the limit of {MAX + 65536} bytes."
    assert stored_files(settings, pet["id"]) == []


def test_chunked_body_over_the_route_limit_is_413_while_streaming(
    api: Api, settings: Settings, pet: dict[str, Any]
) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as it arrives
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
        for _ in range(200):
            yield b"\x00" * (64 * 1024)

    r = api.request(
        "POST",
        f"/pets/{pet['id']}/images",
        api.admin_token(),
        content=chunks(),
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert r.status_code == 413
    assert stored_files(settings, pet["id"]) == []


def test_json_routes_keep_the_1_mib_limit(api: Api) -> None:
    r = api.request(
        "POST",
        "/pets",
        api.admin_token(),
        content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413


def test_a_4_mb_photo_is_accepted(api: Api, pet: dict[str, Any]) -> None:
    noise = Image.effect_noise((2000, 1500), 80).convert("RGB")
    out = io.BytesIO()
    noise.save(out, "JPEG", quality=100)
    assert 1024 * 1024 < len(out.getvalue()) <= MAX
    assert upload(api, pet["id"], out.getvalue()).status_code == 201


class TestFormAndAuth:
    def test_missing_file_part_is_400(
        self, api: Api, settings: Settings, pet: dict[str, Any]
    ) -> None:
        r = upload(api, pet["id"], None, fields={"additionalMetadata": "no file"})
        assert r.status_code == 400
        assert r.json()["errors"][0]["field"] == "file"
        assert stored_files(settings, pet["id"]) == []

    def test_file_as_a_text_field_is_400(
        self, api: Api, settings: Settings, pet: dict[str, Any]
    ) -> None:
        r = upload(api, pet["id"], None, fields={"file": "not a file"})
        assert r.status_code == 400
        assert r.json()["errors"][0] == {
            "field": "file",
            "message": (
                "The multipart body has no file part named 'file' (a part with a filename)."
            ),
            "code": "required",
        }

    def test_unknown_form_field_is_400(self, api: Api, pet: dict[str, Any]) -> None:
        r = upload(api, pet["id"], jpeg(), fields={"caption": "x"})
        assert r.status_code == 400
        assert r.json()["errors"][0]["field"] == "caption"

    def test_json_body_is_415(self, api: Api, pet: dict[str, Any]) -> None:
        r = api.request("POST", f"/pets/{pet['id']}/images", api.admin_token(), json={"a": 1})
        assert r.status_code == 415

    def test_401_without_token(self, api: Api, settings: Settings, pet: dict[str, Any]) -> None:
        r = api.request(
            "POST", f"/pets/{pet['id']}/images", files={"file": ("a.jpg", jpeg(), "image/jpeg")}
        )
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert stored_files(settings, pet["id"]) == []

    def test_403_without_write_pets(
        self, api: Api, settings: Settings, pet: dict[str, Any]
    ) -> None:
        _, token = api.user_token()
        r = upload(api, pet["id"], jpeg(), token=token)
        assert r.status_code == 403
        assert stored_files(settings, pet["id"]) == []

    def test_404_unknown_pet(self, api: Api, settings: Settings) -> None:
        pet_id = "019b4132-70aa-764f-b315-e2803d882a24"
        r = upload(api, pet_id, jpeg())
        assert r.status_code == 404
        assert r.json()["detail"] == f"The requested pet with ID '{pet_id}' was not found."
        assert stored_files(settings, pet_id) == []

    def test_404_for_a_pet_of_another_tenant(
        self, api: Api, client: Any, settings: Settings, pet: dict[str, Any]
    ) -> None:
        other = Api(client, settings, str(uuid.uuid4()))
        r = upload(other, pet["id"], jpeg())
        assert r.status_code == 404
        assert stored_files(settings, pet["id"]) == []


class TestGetImage:
    def test_304_for_a_matching_if_none_match(self, api: Api, pet: dict[str, Any]) -> None:
        url = upload(api, pet["id"], jpeg()).headers["location"]
        etag = api.client.get(url, headers=api.headers()).headers["etag"]
        r = api.client.get(url, headers={**api.headers(), "If-None-Match": f'"other", {etag}'})
        assert r.status_code == 304
        assert r.content == b""
        assert r.headers["etag"] == etag
        assert r.headers["cache-control"] == "private, max-age=31536000, immutable"
        assert (
            api.client.get(url, headers={**api.headers(), "If-None-Match": '"other"'}).status_code
            == 200
        )

    def test_accept_image_types(self, api: Api, pet: dict[str, Any]) -> None:
        url = upload(api, pet["id"], jpeg()).headers["location"]
        assert (
            api.client.get(url, headers={**api.headers(), "Accept": "image/*"}).status_code == 200
        )
        assert (
            api.client.get(url, headers={**api.headers(), "Accept": "image/jpeg"}).status_code
            == 200
        )
        assert (
            api.client.get(url, headers={**api.headers(), "Accept": "text/html"}).status_code == 406
        )

    def test_404_unknown_image(self, api: Api, pet: dict[str, Any]) -> None:
        r = api.client.get(f"/v1/pets/{pet['id']}/images/{'a' * 64}.jpg")
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"

    def test_another_tenants_image_is_404(
        self, api: Api, client: Any, settings: Settings, pet: dict[str, Any]
    ) -> None:
        """The image of a pet in one tenant, read with another tenant's header or token or with
        none (the shared pool), is not found, whatever the name and validators."""
        url = upload(api, pet["id"], jpeg()).headers["location"]
        path = url.removeprefix("http://testserver")
        etag = api.client.get(path, headers=api.headers()).headers["etag"]
        other = Api(client, settings, str(uuid.uuid4()))
        _, token = other.user_token()
        for headers in (other.headers(), other.headers(token), {}):
            for extra in ({}, {"If-None-Match": etag}):
                r = client.get(path, headers={**headers, **extra})
                assert r.status_code == 404, (headers, extra)
                assert r.headers["content-type"] == "application/problem+json"
                assert r.json()["detail"] == (
                    f"The requested image with ID '{path.rsplit('/', 1)[1]}' was not found."
                )
        thumb = path.replace(".jpg", "-128.webp")
        assert client.get(thumb, headers=other.headers()).status_code == 404
        assert client.get(thumb, headers=api.headers()).status_code == 200

    def test_only_the_shared_pools_images_are_publicly_cacheable(
        self, client: Any, settings: Settings
    ) -> None:
        """A tenant's image is read with its X-Tenant-ID or token: a shared cache must never
        store it for others (private); the shared pool's images are public."""
        shared = Api(client, settings, None)
        token = shared.admin_token()
        pet = shared.create_pet(token)
        try:
            url = upload(shared, pet["id"], jpeg()).headers["location"]
            got = client.get(url)
            assert got.status_code == 200
            assert got.headers["cache-control"] == "public, max-age=31536000, immutable"
            tagged = client.get(url, headers={"If-None-Match": got.headers["etag"]})
            assert tagged.status_code == 304
            assert tagged.headers["cache-control"] == "public, max-age=31536000, immutable"
        finally:
            assert shared.request("DELETE", f"/pets/{pet['id']}", token).status_code == 204

    def test_400_for_a_name_that_is_not_an_image_name(self, api: Api, pet: dict[str, Any]) -> None:
        # An encoded '/' is data (RFC 3986): this is Get Pet Image with imageName
        # "../../jwt-secret", which its pattern refuses (400), not a longer path (404).
        r = api.client.get(f"/v1/pets/{pet['id']}/images/..%2F..%2Fjwt-secret")
        assert r.status_code == 400
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"] == [
            {"field": "imageName", "message": "must not contain '/'", "code": "pattern"}
        ]
        r = api.client.get(f"/v1/pets/{pet['id']}/images/{'a' * 64}.gif")
        assert r.status_code == 400
        assert r.json()["errors"][0]["field"] == "imageName"


def test_client_disconnect_mid_body_stores_nothing(
    api: Api, client: Any, app: Any, settings: Settings, pet: dict[str, Any]
) -> None:
    """The body stops half-way (the client went away): a 400 problem, no file, no photo."""
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
    body = head + jpeg((300, 200))
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": body[: len(body) // 2], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []
    path = f"/v1/pets/{pet['id']}/images"
    headers = [
        (b"host", b"testserver"),
        (b"content-type", b"multipart/form-data; boundary=b"),
        (b"content-length", str(len(body) + 8).encode()),
        *((k.lower().encode(), v.encode()) for k, v in api.headers(api.admin_token()).items()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def call() -> None:
        await app(scope, receive, send)

    client.portal.call(call)
    assert sent[0]["status"] == 400
    assert json.loads(sent[1]["body"])["errors"] == [
        {"field": "body", "message": "The body ended early", "code": "truncated"}
    ]
    assert stored_files(settings, pet["id"]) == []
    assert photos(api, pet["id"]) == []
