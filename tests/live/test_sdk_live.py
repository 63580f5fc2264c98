"""The typed Python client that `make sdk` generates (openapi-python-client, the same command and
settings) drives a live server through the adoption journey: list and filter pets, create a pet
from a typed body, register, log in, order, pay, read the order. Generation itself must not warn:
a spec construct the generator cannot model shows up here first."""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.live.conftest import Live

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = Path(sys.executable).with_name("openapi-python-client")


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    out = tmp_path_factory.mktemp("sdk") / "python"
    done = subprocess.run(  # noqa: S603 - the generator installed in our own venv
        [str(GENERATOR), "generate", "--path", str(ROOT / "spec" / "openapi.yaml"),
         "--output-path", str(out), "--config", str(ROOT / "spec" / "clients" / "python.yaml"),
         "--fail-on-warning"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning" not in (done.stdout + done.stderr).lower(), done.stdout + done.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("petstore_client")
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n.split(".")[0] == "petstore_client"]:
            del sys.modules[name]


def _module(name: str) -> Any:
    return importlib.import_module(f"petstore_client.{name}")


def test_the_generated_client_adopts_a_pet(sdk: ModuleType, live: Live) -> None:
    m = _module("models")
    list_pets, create_pet, get_pet = (
        _module(f"api.pet.{n}") for n in ("list_pets", "create_pet", "get_pet")
    )
    create_user, create_auth_token = (
        _module(f"api.user.{n}") for n in ("create_user", "create_auth_token")
    )
    create_order, get_order = (_module(f"api.store.{n}") for n in ("create_order", "get_order"))
    pay_order = _module("api.payments.pay_order")

    anonymous = sdk.Client(base_url=live.base, raise_on_unexpected_status=True)
    admin = sdk.AuthenticatedClient(
        base_url=live.base, token=live.admin, raise_on_unexpected_status=True
    )
    tag = f"Sdk{time.monotonic_ns() % 10**9}"

    # create a pet from a typed body (PetInput: no server fields to invent)
    created = create_pet.sync_detailed(
        client=admin,
        body=m.PetInput(
            name=tag,
            species=m.Species.CAT,
            age_months=14,
            price="80.00",
            currency=m.Currency.EUR,
            status=m.PetStatus.AVAILABLE,
            good_with_kids=True,
        ),
    )
    assert created.status_code == 201
    pet = created.parsed
    assert isinstance(pet, m.Pet)
    assert (pet.name, pet.species, pet.price) == (tag, m.Species.CAT, "80.00")
    assert created.headers["location"].endswith(f"/pets/{pet.id}")

    # list and filter: typed enums in the query, a typed collection back
    page = list_pets.sync(
        client=anonymous,
        species=[m.Species.CAT],
        status=[m.PetStatus.AVAILABLE],
        name=tag,
        sort=m.ListPetsSort.CREATED_AT_DESC,
    )
    assert isinstance(page, m.PetCollection)
    assert [p.id for p in page.data] == [pet.id]
    dogs = list_pets.sync(client=anonymous, species=[m.Species.DOG], name=tag)
    assert dogs.data == []

    # errors come back typed too
    missing = get_pet.sync(id=uuid.UUID("019b4132-70aa-764f-b315-000000000000"), client=anonymous)
    assert isinstance(missing, m.Error)
    assert missing.status == 404

    # register, then log in
    username = tag.lower()
    registered = create_user.sync_detailed(
        client=anonymous,
        body=m.NewUser(
            username=username,
            email=f"{username}@example.com",
            password="sdk-pass-1234",
            first_name="Sdk",
            last_name="User",
        ),
    )
    assert registered.status_code == 201, registered.content
    token = create_auth_token.sync(
        client=anonymous, body=m.TokenRequest(username=username, password="sdk-pass-1234")
    )
    assert isinstance(token, m.Token)
    user = sdk.AuthenticatedClient(
        base_url=live.base, token=token.token, raise_on_unexpected_status=True
    )

    # order, pay, read the order
    placed = create_order.sync_detailed(client=user, body=m.OrderInput(pet_id=pet.id))
    assert placed.status_code == 201
    order = placed.parsed
    assert isinstance(order, m.Order)
    assert (order.status, order.total_amount, order.currency) == (
        m.OrderStatus.PLACED,
        "80.00",
        m.Currency.EUR,
    )
    paid = pay_order.sync(
        id=order.id,
        client=user,
        body=m.PaymentInput(
            amount=order.total_amount,
            currency=order.currency,
            source=m.BankCardInput(
                object_=m.BankCardInputObject.CARD,
                number="4242424242424242",
                cvc="123",
                exp_month=12,
                exp_year=2030,
            ),
        ),
    )
    assert isinstance(paid, m.OrderPayment)
    assert paid.status == m.PaymentStatus.SUCCEEDED
    assert isinstance(paid.source, m.BankCard)
    assert paid.source.last4 == "4242"
    assert "4242424242424242" not in str(paid.to_dict())
    final = get_order.sync(id=order.id, client=user)
    assert isinstance(final, m.Order)
    assert final.status == m.OrderStatus.APPROVED
    assert isinstance(final.receipt, m.Receipt)
    assert final.receipt.receipt_id
