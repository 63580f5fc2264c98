"""Pet operations through the Connexion app: every documented status, full problem bodies."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid

import jwt

from tests.conftest import PET, Api, problem

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class TestCreatePet:
    def test_server_fields_are_not_an_input(self, api: Api) -> None:
        # Create Pet takes PetInput: a Pet as answered (id, createdAt, links, photos) is refused,
        # naming the first field, and nothing is created
        token = api.admin_token()
        before = api.request("GET", "/pets?limit=100").json()["pagination"]["totalItems"]
        body = {
            **PET,
            "id": str(uuid.uuid4()),
            "createdAt": "2000-01-01T00:00:00Z",
            "links": {"self": "https://evil.example/x"},
            "photos": ["https://x.example/a.jpg"],
        }
        r = api.request("POST", "/pets", token, json=body)
        assert r.status_code == 400, r.text
        assert r.json()["errors"][0]["code"] == "unknown_field"
        assert "createdAt" in r.json()["errors"][0]["message"]
        assert api.request("GET", "/pets?limit=100").json()["pagination"]["totalItems"] == before

    def test_201_with_location_etag_and_server_fields(self, api: Api) -> None:
        token = api.admin_token()
        body = dict(PET)
        r = api.request("POST", "/pets", token, json=body)
        assert r.status_code == 201, r.text
        pet = r.json()
        assert UUID7.match(pet["id"])
        assert pet["photos"] == []
        assert r.headers["location"] == f"http://testserver/v1/pets/{pet['id']}"
        assert pet["links"] == {
            "self": r.headers["location"],
            "adopt": "http://testserver/v1/orders",
        }
        assert r.headers["etag"]
        assert pet["price"] == "150.00"
        assert pet["currency"] == "USD"
        assert pet["tenantId"] == api.tenant
        assert api.request("GET", f"/pets/{pet['id']}").json() == pet

    def test_price_is_normalised_to_two_places(self, api: Api) -> None:
        pet = api.create_pet(api.admin_token(), price="75")
        assert pet["price"] == "75.00"

    def test_400_names_every_bad_field(self, api: Api) -> None:
        body = {**PET, "species": "DRAGON", "ageMonths": -1, "price": "1.234"}
        del body["name"]
        r = api.request("POST", "/pets", api.admin_token(), json=body)
        assert r.status_code == 400
        assert r.headers["content-type"] == "application/problem+json"
        fields = {e["field"] for e in r.json()["errors"]}
        assert fields == {"name", "species", "ageMonths", "price"}
        assert r.json()["type"] == "https://petstoreapi.com/errors/validation-error"

    def test_400_unknown_property(self, api: Api) -> None:
        r = api.request("POST", "/pets", api.admin_token(), json={**PET, "owner": "me"})
        assert r.status_code == 400
        assert r.json()["errors"] == [
            {
                "field": "owner",
                "code": "unknown_field",
                "message": "Additional properties are not allowed ('owner' was unexpected)",
            }
        ]

    def test_401_without_token(self, api: Api) -> None:
        r = api.request("POST", "/pets", json=PET)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.json() == problem(
            401, "unauthorized", "Unauthorized", "No authorization token provided", "/v1/pets"
        )

    def test_401_with_forged_token(self, api: Api) -> None:
        """Real forgeries of an admin token for this tenant: well-formed, every claim a real token
        carries, valid for an hour, but signed with another key; and a user's real token whose
        payload was edited into an admin's, its original signature kept."""
        user, token = api.user_token()
        claims = jwt.decode(token, options={"verify_signature": False})
        admin = {**claims, "role": "admin", "scope": "admin read:pets write:pets"}
        admin["exp"] = int(time.time()) + 3600
        other_key = jwt.encode(admin, "another-secret-that-is-long-enough-too", algorithm="HS256")
        header, _, signature = token.split(".")
        tampered = ".".join((header, _b64(json.dumps(admin).encode()), signature))
        assert claims["sub"] == user["id"]  # the forgeries name a real account
        for forged in (other_key, tampered):
            r = api.request("POST", "/pets", forged, json=PET)
            assert r.status_code == 401
            assert r.json()["detail"] == "Provided token is not valid"
            assert r.headers["www-authenticate"].startswith("Bearer")
        assert api.request("GET", "/pets").json()["pagination"]["totalItems"] == 0
        # The untouched token is still accepted (and refused the scope it lacks).
        assert api.request("POST", "/pets", token, json=PET).status_code == 403

    def test_403_for_a_plain_user(self, api: Api) -> None:
        _, token = api.user_token()
        r = api.request("POST", "/pets", token, json=PET)
        assert r.status_code == 403
        assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
        assert r.json()["type"] == "https://petstoreapi.com/errors/forbidden"
        assert api.request("GET", "/pets").json()["pagination"]["totalItems"] == 0

    def test_415_for_non_json_body(self, api: Api) -> None:
        r = api.request(
            "POST",
            "/pets",
            api.admin_token(),
            content=b"name=x",
            headers={"Content-Type": "text/plain"},
        )
        assert r.status_code == 415
        assert r.json()["type"] == "https://petstoreapi.com/errors/unsupported-media-type"


class TestGetPet:
    def test_200_public_with_etag_and_rate_limit_headers(self, api: Api) -> None:
        pet = api.create_pet(api.admin_token())
        r = api.request("GET", f"/pets/{pet['id']}")
        assert r.status_code == 200
        assert r.json() == pet
        assert r.headers["etag"] == f'"{pet["id"].replace("-", "")[-12:]}-1"'
        for name in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"):
            assert r.headers[name].isdigit()

    def test_404_problem(self, api: Api) -> None:
        missing = "019b4132-70aa-764f-b315-e2803d882a24"
        r = api.request("GET", f"/pets/{missing}")
        assert r.status_code == 404
        assert r.json() == problem(
            404,
            "not-found",
            "Not Found",
            f"The requested pet with ID '{missing}' was not found.",
            f"/v1/pets/{missing}",
        )

    def test_400_for_malformed_id(self, api: Api) -> None:
        r = api.request("GET", "/pets/not-a-uuid")
        assert r.status_code == 400
        assert r.json()["errors"][0]["field"] == "id"


class TestUpdatePet:
    def test_200_replaces_fields_and_bumps_etag(self, api: Api) -> None:
        token = api.admin_token()
        pet = api.create_pet(token)
        etag = api.request("GET", f"/pets/{pet['id']}").headers["etag"]
        new = {**PET, "name": "Max", "status": "PENDING", "price": "99.50"}
        del new["breed"]
        r = api.request("PUT", f"/pets/{pet['id']}", token, json=new, headers={"If-Match": etag})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["name"], body["status"], body["price"]) == ("Max", "PENDING", "99.50")
        assert "breed" not in body
        assert body["createdAt"] == pet["createdAt"]
        assert r.headers["etag"] != etag

    def test_412_on_stale_if_match_and_nothing_written(self, api: Api) -> None:
        token = api.admin_token()
        pet = api.create_pet(token)
        stale = api.request("GET", f"/pets/{pet['id']}").headers["etag"]
        api.request("PUT", f"/pets/{pet['id']}", token, json={**PET, "name": "First"})
        r = api.request(
            "PUT",
            f"/pets/{pet['id']}",
            token,
            json={**PET, "name": "Second"},
            headers={"If-Match": stale},
        )
        assert r.status_code == 412
        assert r.json()["type"] == "https://petstoreapi.com/errors/precondition-failed"
        assert api.request("GET", f"/pets/{pet['id']}").json()["name"] == "First"

    def test_wildcard_if_match_is_unconditional(self, api: Api) -> None:
        token = api.admin_token()
        pet = api.create_pet(token)
        r = api.request("PUT", f"/pets/{pet['id']}", token, json=PET, headers={"If-Match": "*"})
        assert r.status_code == 200

    def test_404_unknown_pet(self, api: Api) -> None:
        r = api.request("PUT", f"/pets/{uuid.uuid4()}", api.admin_token(), json=PET)
        assert r.status_code == 404

    def test_401_and_403(self, api: Api) -> None:
        pet = api.create_pet(api.admin_token())
        assert api.request("PUT", f"/pets/{pet['id']}", json=PET).status_code == 401
        _, user = api.user_token()
        assert api.request("PUT", f"/pets/{pet['id']}", user, json=PET).status_code == 403

    def test_400_bad_body(self, api: Api) -> None:
        pet = api.create_pet(api.admin_token())
        r = api.request("PUT", f"/pets/{pet['id']}", api.admin_token(), json={"name": ""})
        assert r.status_code == 400
        assert "name" in {e["field"] for e in r.json()["errors"]}


class TestDeletePet:
    def test_204_then_404(self, api: Api) -> None:
        token = api.admin_token()
        pet = api.create_pet(token)
        r = api.request("DELETE", f"/pets/{pet['id']}", token)
        assert r.status_code == 204
        assert r.content == b""
        assert api.request("GET", f"/pets/{pet['id']}").status_code == 404
        assert api.request("DELETE", f"/pets/{pet['id']}", token).status_code == 404

    def test_401_403(self, api: Api) -> None:
        pet = api.create_pet(api.admin_token())
        assert api.request("DELETE", f"/pets/{pet['id']}").status_code == 401
        _, user = api.user_token()
        assert api.request("DELETE", f"/pets/{pet['id']}", user).status_code == 403
        assert api.request("GET", f"/pets/{pet['id']}").status_code == 200


class TestListPets:
    def _catalogue(self, api: Api) -> dict[str, str]:
        token = api.admin_token()
        rows = [
            ("Rex", "DOG", 6, "100.00", True, "AVAILABLE"),
            ("Tom", "CAT", 30, "50.00", False, "AVAILABLE"),
            ("Kit", "CAT", 12, "75.00", True, "PENDING"),
            ("Hop", "RABBIT", 48, "20.00", True, "ADOPTED"),
        ]
        ids = {}
        for name, species, age, price, kids, status in rows:
            ids[name] = api.create_pet(
                token,
                name=name,
                species=species,
                ageMonths=age,
                price=price,
                goodWithKids=kids,
                status=status,
            )["id"]
        return ids

    def test_collection_wrapper_and_pagination_links(self, api: Api) -> None:
        self._catalogue(api)
        r = api.request("GET", "/pets", params={"limit": 3, "sort": "name"})
        assert r.status_code == 200
        body = r.json()
        assert [p["name"] for p in body["data"]] == ["Hop", "Kit", "Rex"]
        assert body["pagination"] == {"page": 1, "limit": 3, "totalItems": 4, "totalPages": 2}
        # next is a keyset cursor link (the other links are page numbers)
        assert body["links"]["next"].startswith(
            "http://testserver/v1/pets?sort=name&limit=3&cursor="
        )
        assert "prev" not in body["links"]
        second = api.client.get(body["links"]["next"], headers=api.headers()).json()
        assert [p["name"] for p in second["data"]] == ["Tom"]
        assert second["links"]["prev"].endswith("page=1&limit=3")

    def test_links_keep_every_filter(self, api: Api) -> None:
        self._catalogue(api)
        params = {"species": ["DOG", "CAT"], "goodWithKids": "true", "limit": 1, "sort": "name"}
        body = api.request("GET", "/pets", params=params).json()
        assert body["pagination"]["totalItems"] == 2
        nxt = api.client.get(body["links"]["next"], headers=api.headers()).json()
        assert nxt["pagination"] == {**body["pagination"], "page": 2}
        assert [p["name"] for p in body["data"] + nxt["data"]] == ["Kit", "Rex"]

    def test_filters(self, api: Api) -> None:
        self._catalogue(api)

        def names(**params: object) -> list[str]:
            r = api.request("GET", "/pets", params={**params, "sort": "name"})
            assert r.status_code == 200, r.text
            return [p["name"] for p in r.json()["data"]]

        assert names(species="CAT") == ["Kit", "Tom"]
        assert names(species=["CAT", "RABBIT"]) == ["Hop", "Kit", "Tom"]
        assert names(status="AVAILABLE", goodWithKids="true") == ["Rex"]
        assert names(minAge=10, maxAge=40) == ["Kit", "Tom"]
        assert names(minPrice="60", maxPrice="100") == ["Kit", "Rex"]
        assert names(name="o") == ["Hop", "Tom"]

    def test_sort_descending(self, api: Api) -> None:
        self._catalogue(api)
        r = api.request("GET", "/pets", params={"sort": "-ageMonths"})
        assert [p["ageMonths"] for p in r.json()["data"]] == [48, 30, 12, 6]

    def test_page_size_is_capped(self, api: Api) -> None:
        r = api.request("GET", "/pets", params={"limit": 101})
        assert r.status_code == 400
        assert r.json()["errors"] == [
            {
                "field": "limit",
                "message": "101 is greater than the maximum of 100",
                "code": "maximum",
            }
        ]

    def test_422_when_range_is_inverted(self, api: Api) -> None:
        r = api.request("GET", "/pets", params={"minAge": 10, "maxAge": 5})
        assert r.status_code == 422
        assert r.json() == problem(
            422,
            "validation-error",
            "Unprocessable Entity",
            "minAge: must not be greater than maxAge",
            "/v1/pets",
            errors=[
                {"field": "minAge", "message": "must not be greater than maxAge", "code": "range"}
            ],
        )

    def test_400_unknown_query_parameter(self, api: Api) -> None:
        r = api.request("GET", "/pets", params={"colour": "red"})
        assert r.status_code == 400
        assert r.json()["errors"][0]["field"] == "colour"


class TestSearchPets:
    def test_post_and_query_methods_give_the_same_result(self, api: Api) -> None:
        token = api.admin_token()
        for name, age in (("A", 6), ("B", 20), ("C", 40)):
            api.create_pet(token, name=name, ageMonths=age, species="CAT")
        api.create_pet(token, name="D", ageMonths=20, species="DOG")
        body = {
            "criteria": {"species": ["CAT"], "ageRange": {"min": 10, "max": 50}},
            "sort": {"field": "ageMonths", "order": "ASC"},
            "pagination": {"page": 1, "limit": 10},
        }
        post = api.request("POST", "/pets/search", json=body)
        query = api.request("QUERY", "/pets/search", json=body)
        assert post.status_code == query.status_code == 200
        assert [p["name"] for p in post.json()["data"]] == ["B", "C"]
        assert post.json()["data"] == query.json()["data"]

    def test_links_are_the_equivalent_list_query(self, api: Api) -> None:
        token = api.admin_token()
        for name in ("A", "B", "C"):
            api.create_pet(token, name=name, species="CAT")
        api.create_pet(token, name="D", species="DOG")
        body = {
            "criteria": {"species": ["CAT"]},
            "sort": {"field": "name", "order": "ASC"},
            "pagination": {"limit": 2},
        }
        first = api.request("POST", "/pets/search", json=body).json()
        second = api.client.get(first["links"]["next"], headers=api.headers()).json()
        assert [p["name"] for p in first["data"] + second["data"]] == ["A", "B", "C"]
        assert second["pagination"]["totalItems"] == 3

    REFERENCE_BODY = {  # the reference's own QUERY example (docs2 quick start), as it is
        "criteria": {
            "species": ["DOG", "CAT"],
            "ageRange": {"min": 12, "max": 36},
            "compatibility": {"goodWithKids": True, "goodWithDogs": True},
        },
        "sort": {"field": "ageMonths", "order": "ASC"},
        "pagination": {"page": 1, "limit": 20},
    }

    def test_the_reference_body_is_accepted_and_every_criterion_filters(self, api: Api) -> None:
        token = api.admin_token()
        match = {"goodWithKids": True, "goodWithPets": True, "ageMonths": 24}
        api.create_pet(token, name="Fits", species="DOG", **match)
        api.create_pet(token, name="Cat", species="CAT", **{**match, "ageMonths": 12})
        api.create_pet(token, name="NoDogs", species="DOG", **{**match, "goodWithPets": False})
        api.create_pet(token, name="NoKids", species="CAT", **{**match, "goodWithKids": False})
        unknown = {k: v for k, v in PET.items() if k != "goodWithPets"}  # not recorded
        r = api.request("POST", "/pets", token, json={**unknown, "name": "Unknown"})
        assert r.status_code == 201
        assert "goodWithPets" not in r.json()
        api.create_pet(token, name="Old", species="DOG", **{**match, "ageMonths": 37})
        api.create_pet(token, name="Bird", species="BIRD", **match)
        for method in ("QUERY", "POST"):
            r = api.request(method, "/pets/search", json=self.REFERENCE_BODY)
            assert r.status_code == 200, r.text
            assert [p["name"] for p in r.json()["data"]] == ["Cat", "Fits"]
            # the links are the equivalent list query: goodWithDogs filters on goodWithPets
            assert "goodWithPets=true" in r.json()["links"]["self"]
            listed = api.client.get(r.json()["links"]["self"], headers=api.headers())
            assert listed.json()["data"] == r.json()["data"]

    def test_good_with_dogs_and_cats_match_good_with_pets(self, api: Api) -> None:
        token = api.admin_token()
        api.create_pet(token, name="Friendly", goodWithPets=True)
        api.create_pet(token, name="Loner", goodWithPets=False)

        def names(compatibility: dict[str, bool]) -> list[str]:
            body = {"criteria": {"compatibility": compatibility}}
            r = api.request("POST", "/pets/search", json=body)
            assert r.status_code == 200, r.text
            return [p["name"] for p in r.json()["data"]]

        assert names({"goodWithDogs": True}) == ["Friendly"]
        assert names({"goodWithCats": True}) == ["Friendly"]
        assert names({"goodWithDogs": False}) == ["Loner"]
        assert names({"goodWithCats": False, "goodWithPets": False}) == ["Loner"]

    def test_422_when_dogs_and_pets_disagree(self, api: Api) -> None:
        body = {"criteria": {"compatibility": {"goodWithPets": True, "goodWithDogs": False}}}
        r = api.request("POST", "/pets/search", json=body)
        assert r.status_code == 422, r.text
        assert r.json()["errors"] == [
            {
                "field": "criteria.compatibility.goodWithDogs",
                "message": "must agree with goodWithPets: both filter on the pet's goodWithPets",
                "code": "conflict",
            }
        ]

    def test_400_bad_criteria(self, api: Api) -> None:
        r = api.request("POST", "/pets/search", json={"criteria": {"species": ["DRAGON"]}})
        assert r.status_code == 400
        assert r.json()["errors"][0]["field"] == "criteria.species.0"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
