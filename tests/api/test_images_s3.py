"""The S3 media store end to end: a second app configured for a bucket, against moto's S3
server on a loopback port (a real S3 client over HTTP, not a mock object)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from starlette.testclient import TestClient

from app import create_app
from settings import Settings
from tests.api.test_images import jpeg, zip_bytes
from tests.conftest import Api, make_settings

BUCKET = "petstore-media-test"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test-key",
    "AWS_SECRET_ACCESS_KEY": "test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3(s3_endpoint: str) -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as env:
        for key, value in CREDENTIALS.items():
            env.setenv(key, value)
        client = boto3.client("s3", endpoint_url=s3_endpoint)
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture(scope="module")
def s3_api(
    s3: Any, s3_endpoint: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    s3_settings = make_settings(
        tmp_path_factory.mktemp("s3var"),
        DATABASE_URL=settings.database_url,
        PETSTORE_MEDIA_S3_BUCKET=BUCKET,
        PETSTORE_MEDIA_S3_PREFIX="media",
        PETSTORE_MEDIA_S3_ENDPOINT=s3_endpoint,
        PETSTORE_MEDIA_S3_REGION="us-east-1",
    )
    with pytest.MonkeyPatch.context() as env:
        for key, value in CREDENTIALS.items():
            env.setenv(key, value)
        app = create_app(s3_settings)
    with TestClient(app) as client:
        yield Api(client, s3_settings, str(uuid.uuid4()))


def keys(s3: Any, pet_id: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"media/pets/{pet_id}/")
    return sorted(item["Key"] for item in listed.get("Contents", []))


def test_upload_serve_and_delete_through_s3(s3_api: Api, s3: Any) -> None:
    token = s3_api.admin_token()
    pet = s3_api.create_pet(token)
    r = s3_api.request(
        "POST", f"/pets/{pet['id']}/images", token, files={"file": ("a.jpg", jpeg(), "image/jpeg")}
    )
    assert r.status_code == 201, r.text
    name = r.headers["location"].rsplit("/", 1)[1]
    digest = name.removesuffix(".jpg")
    prefix = f"media/pets/{pet['id']}/"
    assert keys(s3, pet["id"]) == sorted(
        [prefix + name, f"{prefix}{digest}-128.webp", f"{prefix}{digest}-512.webp"]
    )
    stored = s3.get_object(Bucket=BUCKET, Key=prefix + name)
    assert stored["ContentType"] == "image/jpeg"
    body = stored["Body"].read()
    assert b"SecretCam" not in body

    got = s3_api.client.get(r.headers["location"], headers=s3_api.headers())
    assert got.status_code == 200
    assert got.content == body
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["etag"] == f'"{digest}"'
    assert (
        s3_api.client.get(
            r.headers["location"], headers={**s3_api.headers(), "If-None-Match": f'"{digest}"'}
        ).status_code
        == 304
    )

    assert s3_api.request("DELETE", f"/pets/{pet['id']}", token).status_code == 204
    assert keys(s3, pet["id"]) == []
    assert s3_api.client.get(r.headers["location"], headers=s3_api.headers()).status_code == 404


def test_refused_file_leaves_the_bucket_untouched(s3_api: Api, s3: Any) -> None:
    token = s3_api.admin_token()
    pet = s3_api.create_pet(token)
    r = s3_api.request(
        "POST",
        f"/pets/{pet['id']}/images",
        token,
        files={"file": ("a.jpg", jpeg() + zip_bytes(), "image/jpeg")},
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["code"] == "trailing_data"
    assert keys(s3, pet["id"]) == []
