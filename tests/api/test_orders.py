"""Orders and payments through the Connexion app: reservation, visibility, the status machine,
payments by card and bank account, idempotency keys. Every rule has a test that fails without it."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from models import IdempotencyRecord, Order, Payment
from models.base import utcnow
from models.database import Database
from tests.conftest import Api, problem, run_db

CARD = {
    "object": "card",
    "name": "J. Doe",
    "number": "4242424242424242",
    "cvc": "123",
    "expMonth": 12,
    "expYear": 2030,
    "addressCountry": "gb",
}
IBAN = "DE89370400440532013000"


def iban_with_last4(last4: str) -> str:
    """A valid German IBAN whose last four digits are ``last4`` (for the test processor)."""
    bban = "37040044053201" + last4
    check = 98 - int("".join(str(int(c, 36)) for c in bban + "DE00")) % 97
    return f"DE{check:02d}{bban}"


class Shop:
    """One tenant with an admin, a pet and helpers to order and pay it."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.admin = api.admin_token()
        self.user, self.token = api.user_token()

    def pet(self, **fields: Any) -> dict[str, Any]:
        return self.api.create_pet(self.admin, **fields)

    def order(self, pet_id: str, token: str | None = None, **kw: Any) -> Any:
        return self.api.request("POST", "/orders", token, json={"petId": pet_id}, **kw)

    def placed(self, token: str | None = None, **pet_fields: Any) -> dict[str, Any]:
        r = self.order(self.pet(**pet_fields)["id"], token or self.token)
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    def pay(
        self, order: dict[str, Any], token: str | None = None, source: Any = None, **kw: Any
    ) -> Any:
        body = {
            "amount": kw.pop("amount", order["totalAmount"]),
            "currency": kw.pop("currency", order["currency"]),
            "source": source or CARD,
        }
        return self.api.request(
            "POST", f"/orders/{order['id']}/payment", token or self.token, json=body, **kw
        )

    def get(self, order_id: str, token: str | None = None, **kw: Any) -> Any:
        return self.api.request("GET", f"/orders/{order_id}", token or self.token, **kw)

    def pet_status(self, pet_id: str) -> str:
        status: str = self.api.request("GET", f"/pets/{pet_id}").json()["status"]
        return status


@pytest.fixture
def shop(api: Api) -> Shop:
    return Shop(api)


def _rows(api: Api, model: Any, **where: Any) -> list[Any]:
    async def go(db: Database) -> list[Any]:
        stmt = select(model).filter_by(**where)
        return await db.run(api.tenant or "", lambda s: list(s.scalars(stmt)))

    result: list[Any] = run_db(api.settings, go)
    return result


class TestCreateOrder:
    def test_201_reserves_the_pet_and_takes_the_price_from_it(self, shop: Shop) -> None:
        pet = shop.pet(price="125.5", currency="EUR")
        # the price, status and currency are the server's: OrderInput refuses them, naming one
        forged = {"petId": pet["id"], "totalAmount": "0.01", "status": "DELIVERED"}
        refused = shop.api.request("POST", "/orders", shop.token, json=forged)
        assert refused.status_code == 400, refused.text
        assert refused.json()["errors"][0]["code"] == "unknown_field"
        assert shop.pet_status(pet["id"]) == "AVAILABLE"
        r = shop.api.request("POST", "/orders", shop.token, json={"petId": pet["id"]})
        assert r.status_code == 201, r.text
        order = r.json()
        assert r.headers["location"] == f"http://testserver/v1/orders/{order['id']}"
        assert order["status"] == "PLACED"
        assert order["totalAmount"] == "125.50"
        assert order["currency"] == "EUR"
        assert order["userId"] == shop.user["id"]
        assert order["petId"] == pet["id"]
        assert order["links"]["payment"] == f"{r.headers['location']}/payment"
        assert "guestToken" not in order
        assert shop.pet_status(pet["id"]) == "PENDING"
        assert shop.get(order["id"]).json() == order

    def test_409_when_the_pet_is_not_available(self, shop: Shop) -> None:
        pet = shop.pet()
        assert shop.order(pet["id"], shop.token).status_code == 201
        other = shop.api.user_token()[1]
        r = shop.order(pet["id"], other)
        assert r.status_code == 409
        detail = "The pet is PENDING, not AVAILABLE; it cannot be ordered."
        assert r.json() == problem(
            409, "conflict", "Conflict", detail, "/v1/orders",
            errors=[{"field": "petId", "message": detail, "code": "unavailable"}],
        )  # fmt: skip
        adopted = shop.pet(status="ADOPTED")
        assert shop.order(adopted["id"], shop.token).status_code == 409

    def test_422_for_an_unknown_pet(self, shop: Shop) -> None:
        missing = str(uuid.uuid4())
        r = shop.order(missing, shop.token)
        assert r.status_code == 422
        assert r.json()["errors"] == [
            {"field": "petId", "message": f"no pet with ID '{missing}'", "code": "not_found"}
        ]

    def test_400_without_pet_id(self, shop: Shop) -> None:
        r = shop.api.request("POST", "/orders", shop.token, json={})
        assert r.status_code == 400
        assert r.json()["errors"][0]["field"] == "petId"

    def test_an_invalid_token_is_401_not_a_guest_order(self, shop: Shop) -> None:
        pet = shop.pet()
        r = shop.order(pet["id"], "not-a-token")
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert shop.pet_status(pet["id"]) == "AVAILABLE"

    def test_an_expired_hold_releases_the_pet(self, shop: Shop) -> None:
        first = shop.placed()

        async def expire(db: Database) -> None:
            stmt = (
                update(Order)
                .where(Order.id == uuid.UUID(first["id"]))
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
            await db.run(shop.api.tenant or "", lambda s: s.execute(stmt), write=True)

        run_db(shop.api.settings, expire)
        other = shop.api.user_token()[1]
        # another client: the lapsed hold's own client (account or address) waits to re-hold
        elsewhere = TestClient(shop.api.client.app, client=("198.51.100.46", 50000))
        r = Api(elsewhere, shop.api.settings, shop.api.tenant).request(
            "POST", "/orders", other, json={"petId": first["petId"]}
        )
        assert r.status_code == 201, r.text
        assert shop.get(first["id"]).json()["status"] == "CANCELLED"


class TestGuestOrders:
    def test_guest_token_is_the_only_key_to_a_guest_order(self, shop: Shop) -> None:
        pet = shop.pet()
        r = shop.order(pet["id"])
        assert r.status_code == 201, r.text
        order = r.json()
        token = order.pop("guestToken")
        assert len(token) >= 40
        assert order["userId"] is None
        mine = shop.api.request("GET", f"/orders/{order['id']}", headers={"X-Order-Token": token})
        assert mine.status_code == 200
        assert mine.json() == order  # the token is shown once, never again
        assert shop.api.request("GET", f"/orders/{order['id']}").status_code == 401
        wrong = {"X-Order-Token": token[:-2] + "xx"}
        assert shop.api.request("GET", f"/orders/{order['id']}", headers=wrong).status_code == 404
        assert shop.get(order["id"], shop.token).status_code == 404
        assert shop.get(order["id"], shop.admin).status_code == 200

    def test_guest_pays_and_cancels_with_the_token(self, shop: Shop) -> None:
        order = shop.order(shop.pet()["id"]).json()
        headers = {"X-Order-Token": order["guestToken"]}
        body = {"amount": order["totalAmount"], "currency": "USD", "source": CARD}
        path = f"/orders/{order['id']}"
        assert shop.api.request("POST", f"{path}/payment", json=body).status_code == 401
        paid = shop.api.request("POST", f"{path}/payment", json=body, headers=headers)
        assert paid.status_code == 200, paid.text
        assert shop.api.request("DELETE", path, headers=headers).status_code == 204
        assert shop.api.request("GET", path, headers=headers).json()["status"] == "CANCELLED"

    def test_the_token_hash_not_the_token_is_stored(self, shop: Shop) -> None:
        order = shop.order(shop.pet()["id"]).json()
        (row,) = _rows(shop.api, Order, id=uuid.UUID(order["id"]))
        assert row.guest_token_hash == hashlib.sha256(order["guestToken"].encode()).hexdigest()


class TestGetOrder:
    def test_another_users_order_is_404_like_a_missing_one(self, shop: Shop) -> None:
        order = shop.placed()
        other = shop.api.user_token()[1]
        r = shop.get(order["id"], other)
        missing = str(uuid.uuid4())
        r2 = shop.get(missing, other)
        assert r.status_code == r2.status_code == 404
        assert r.json()["detail"] == f"The requested order with ID '{order['id']}' was not found."
        assert r2.json()["detail"] == f"The requested order with ID '{missing}' was not found."

    def test_401_without_any_credential(self, shop: Shop) -> None:
        r = shop.api.request("GET", f"/orders/{uuid.uuid4()}")
        assert r.status_code == 401

    def test_400_for_a_malformed_id(self, shop: Shop) -> None:
        assert shop.get("not-a-uuid").status_code == 400


class TestCancelOrder:
    def test_204_keeps_the_row_cancelled_and_releases_the_pet(self, shop: Shop) -> None:
        order = shop.placed()
        r = shop.api.request("DELETE", f"/orders/{order['id']}", shop.token)
        assert r.status_code == 204
        assert r.content == b""
        after = shop.get(order["id"]).json()
        assert after["status"] == "CANCELLED"
        assert "payment" not in after["links"]
        assert shop.pet_status(order["petId"]) == "AVAILABLE"
        again = shop.api.request("DELETE", f"/orders/{order['id']}", shop.token)
        assert again.status_code == 409
        assert again.json()["errors"][0]["code"] == "invalid_state"

    def test_approved_orders_can_be_cancelled_and_the_payment_is_voided(self, shop: Shop) -> None:
        order = shop.placed()
        payment = shop.pay(order).json()
        assert shop.api.request("DELETE", f"/orders/{order['id']}", shop.token).status_code == 204
        (row,) = _rows(shop.api, Payment, id=uuid.UUID(payment["id"]))
        assert row.status == "CANCELLED"
        assert row.refund_reference.startswith("tr_")  # reversed through the processor
        assert shop.pet_status(order["petId"]) == "AVAILABLE"

    def test_shipped_orders_only_staff_can_cancel(self, shop: Shop) -> None:
        order = shop.placed()
        shop.pay(order)
        path = f"/orders/{order['id']}"
        r = shop.api.request("PATCH", path, shop.admin, json={"status": "SHIPPED"})
        assert r.status_code == 200, r.text
        r = shop.api.request("DELETE", path, shop.token)
        assert r.status_code == 409
        assert "SHIPPED" in r.json()["detail"]
        assert shop.api.request("DELETE", path, shop.admin).status_code == 204

    def test_someone_elses_order_is_404_and_untouched(self, shop: Shop) -> None:
        order = shop.placed()
        other = shop.api.user_token()[1]
        assert shop.api.request("DELETE", f"/orders/{order['id']}", other).status_code == 404
        assert shop.get(order["id"]).json()["status"] == "PLACED"


class TestOrderStatusMachine:
    def test_the_happy_path_ends_with_the_pet_adopted(self, shop: Shop) -> None:
        order = shop.placed()
        path = f"/orders/{order['id']}"
        assert shop.pay(order).status_code == 200
        for status in ("SHIPPED", "DELIVERED"):
            r = shop.api.request("PATCH", path, shop.admin, json={"status": status})
            assert r.status_code == 200, r.text
            assert r.json()["status"] == status
        assert shop.pet_status(order["petId"]) == "ADOPTED"
        assert shop.get(order["id"]).json()["receipt"]["receiptId"].startswith("rcp_")

    @pytest.mark.parametrize(
        ("paid", "target"), [(False, "SHIPPED"), (False, "DELIVERED"), (True, "DELIVERED")]
    )
    def test_illegal_transitions_are_409(self, shop: Shop, paid: bool, target: str) -> None:
        order = shop.placed()
        if paid:
            shop.pay(order)
        r = shop.api.request("PATCH", f"/orders/{order['id']}", shop.admin, json={"status": target})
        assert r.status_code == 409
        assert r.json()["errors"][0] == {
            "field": "status",
            "code": "invalid_state",
            "message": r.json()["detail"],
        }
        assert shop.get(order["id"]).json()["status"] == ("APPROVED" if paid else "PLACED")

    def test_delivered_is_final(self, shop: Shop) -> None:
        order = shop.placed()
        shop.pay(order)
        path = f"/orders/{order['id']}"
        for status in ("SHIPPED", "DELIVERED"):
            shop.api.request("PATCH", path, shop.admin, json={"status": status})
        assert shop.api.request("DELETE", path, shop.admin).status_code == 409
        assert shop.pet_status(order["petId"]) == "ADOPTED"

    def test_staff_cancelling_a_paid_order_refunds_it(self, shop: Shop) -> None:
        order = shop.placed()
        payment = shop.pay(order).json()
        path = f"/orders/{order['id']}"
        r = shop.api.request("PATCH", path, shop.admin, json={"status": "CANCELLED"})
        assert r.status_code == 200, r.text
        (row,) = _rows(shop.api, Payment, id=uuid.UUID(payment["id"]))
        assert (row.status, row.refund_reference[:3]) == ("CANCELLED", "tr_")

    def test_only_staff_fulfil_orders(self, shop: Shop) -> None:
        order = shop.placed()
        r = shop.api.request(
            "PATCH", f"/orders/{order['id']}", shop.token, json={"status": "SHIPPED"}
        )
        assert r.status_code == 403


class TestPayOrder:
    def test_card_payment_approves_the_order_and_never_returns_card_data(self, shop: Shop) -> None:
        order = shop.placed(price="125.50")
        r = shop.pay(order)
        assert r.status_code == 200, r.text
        payment = r.json()
        assert payment["status"] == "SUCCEEDED"
        assert payment["amount"] == "125.50"
        assert payment["orderId"] == order["id"]
        assert payment["source"] == {
            "object": "card", "name": "J. Doe", "number": "************4242", "last4": "4242",
            "brand": "VISA", "expMonth": 12, "expYear": 2030, "addressCountry": "gb",
        }  # fmt: skip
        assert payment["receipt"]["receiptUrl"] == f"http://testserver/v1/orders/{order['id']}"
        after = shop.get(order["id"]).json()
        assert after["status"] == "APPROVED"
        assert after["receipt"] == payment["receipt"]
        (row,) = _rows(shop.api, Payment, id=uuid.UUID(payment["id"]))
        assert "4242424242424242" not in str(row.source)
        assert "cvc" not in row.source

    @pytest.mark.parametrize(
        ("number", "cvc", "brand"),
        [("5555555555554444", "123", "MASTERCARD"), ("378282246310005", "1234", "AMEX")],
    )
    def test_brand_is_detected(self, shop: Shop, number: str, cvc: str, brand: str) -> None:
        r = shop.pay(shop.placed(), source={**CARD, "number": number, "cvc": cvc})
        assert r.status_code == 200, r.text
        assert r.json()["source"]["brand"] == brand
        assert r.json()["source"]["last4"] == number[-4:]

    def test_paying_twice_is_409(self, shop: Shop) -> None:
        order = shop.placed()
        assert shop.pay(order).status_code == 200
        r = shop.pay(order)
        assert r.status_code == 409
        assert r.json()["detail"] == "The order is already paid (status APPROVED)."

    def test_paying_a_cancelled_order_is_409(self, shop: Shop) -> None:
        order = shop.placed()
        shop.api.request("DELETE", f"/orders/{order['id']}", shop.token)
        r = shop.pay(order)
        assert r.status_code == 409
        assert r.json()["detail"] == "The order is CANCELLED and cannot be paid."

    def test_amount_and_currency_must_match_the_order(self, shop: Shop) -> None:
        order = shop.placed(price="150.00")
        r = shop.pay(order, amount="149.99", currency="EUR")
        assert r.status_code == 422
        assert r.json()["errors"] == [
            {"field": "amount", "message": "must equal the order's total 150.00",
             "code": "mismatch"},
            {"field": "currency", "message": "must equal the order's currency USD",
             "code": "mismatch"},
        ]  # fmt: skip
        assert shop.get(order["id"]).json()["status"] == "PLACED"
        assert _rows(shop.api, Payment, order_id=uuid.UUID(order["id"])) == []

    def test_declined_is_402_and_the_order_can_be_paid_again(self, shop: Shop) -> None:
        order = shop.placed()
        r = shop.pay(order, source={**CARD, "number": "4000000000000002"})
        assert r.status_code == 402
        assert r.json() == problem(
            402, "payment-declined", "Payment Required", "The payment source was declined.",
            f"/v1/orders/{order['id']}/payment",
            errors=[{"field": "source", "message": "The payment source was declined.",
                     "code": "card_declined"}],
        )  # fmt: skip
        assert shop.get(order["id"]).json()["status"] == "PLACED"
        (failed,) = _rows(shop.api, Payment, order_id=uuid.UUID(order["id"]))
        assert (failed.status, failed.failure_code) == ("FAILED", "card_declined")
        funds = shop.pay(order, source={**CARD, "number": "4000000000009995"})
        assert funds.json()["errors"][0]["code"] == "insufficient_funds"
        assert shop.pay(order).status_code == 200

    def test_processor_error_is_502_and_retryable(self, shop: Shop) -> None:
        order = shop.placed()
        r = shop.pay(order, source={**CARD, "number": "4000000000000119"})
        assert r.status_code == 502
        assert r.json()["type"] == "https://petstoreapi.com/errors/payment-processor-error"
        assert shop.get(order["id"]).json()["status"] == "PLACED"
        assert shop.pay(order).status_code == 200

    @pytest.mark.parametrize(
        ("change", "field", "code"),
        [
            ({"number": "4242424242424241"}, "source.number", "luhn"),
            ({"expYear": 2020}, "source.expYear", "expired"),
            ({"number": "378282246310005", "cvc": "123"}, "source.cvc", "format"),
        ],
    )
    def test_422_for_a_bad_card(
        self, shop: Shop, change: dict[str, Any], field: str, code: str
    ) -> None:
        order = shop.placed()
        r = shop.pay(order, source={**CARD, **change})
        assert r.status_code == 422
        assert [(e["field"], e["code"]) for e in r.json()["errors"]] == [(field, code)]
        assert _rows(shop.api, Payment, order_id=uuid.UUID(order["id"])) == []

    def test_400_for_a_masked_number(self, shop: Shop) -> None:
        # a number as Bank Card answers it (masked) is not a BankCardInput
        order = shop.placed()
        r = shop.pay(order, source={**CARD, "number": "************4242"})
        assert r.status_code == 400
        assert [e["field"] for e in r.json()["errors"]] == ["source.number"]
        assert "4242" not in r.text
        assert _rows(shop.api, Payment, order_id=uuid.UUID(order["id"])) == []

    def test_400_never_echoes_the_card_number_or_cvc(self, shop: Shop) -> None:
        r = shop.pay(shop.placed(), source={**CARD, "number": "4242-4242-4242-4242", "cvc": "12a"})
        assert r.status_code == 400
        assert {e["field"] for e in r.json()["errors"]} == {"source.number", "source.cvc"}
        assert "4242-4242" not in r.text
        assert "12a" not in r.text

    def test_400_for_an_unknown_source_type(self, shop: Shop) -> None:
        r = shop.pay(shop.placed(), source={"object": "crypto", "wallet": "x"})
        assert r.status_code == 400
        assert r.json()["errors"][0]["field"] == "source"

    def test_iban_payment_is_masked(self, shop: Shop) -> None:
        order = shop.placed(currency="EUR")
        source = {"object": "bank_account", "accountHolderName": "Jane Doe", "country": "DE",
                  "iban": IBAN}  # fmt: skip
        r = shop.pay(order, source=source)
        assert r.status_code == 200, r.text
        assert r.json()["source"] == {
            "object": "bank_account", "accountHolderName": "Jane Doe",
            "accountHolderType": "individual", "country": "DE", "last4": "3000",
            "iban": "DE89**************3000",
        }  # fmt: skip

    def test_us_account_payment(self, shop: Shop) -> None:
        source = {"object": "bank_account", "accountHolderName": "Jane Doe", "country": "US",
                  "routingNumber": "110000000", "accountNumber": "000123456789"}  # fmt: skip
        r = shop.pay(shop.placed(), source=source)
        assert r.status_code == 200, r.text
        assert r.json()["source"]["accountNumber"] == "********6789"

    @pytest.mark.parametrize(
        ("source", "field"),
        [
            ({"country": "DE", "iban": "DE89370400440532013001"}, "source.iban"),
            ({"country": "FR", "iban": IBAN}, "source.country"),
            ({"country": "US", "routingNumber": "110000001", "accountNumber": "1234"},
             "source.routingNumber"),
            ({"country": "US"}, "source.iban"),
        ],
    )  # fmt: skip
    def test_422_for_a_bad_bank_account(
        self, shop: Shop, source: dict[str, Any], field: str
    ) -> None:
        full = {"object": "bank_account", "accountHolderName": "Jane Doe", **source}
        r = shop.pay(shop.placed(currency="EUR"), source=full, currency="EUR")
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == field

    def test_bank_account_decline_follows_the_last_four_digits(self, shop: Shop) -> None:
        source = {"object": "bank_account", "accountHolderName": "Jane Doe", "country": "DE",
                  "iban": iban_with_last4("0002")}  # fmt: skip
        r = shop.pay(shop.placed(currency="EUR"), source=source)
        assert r.status_code == 402, r.text

    def test_someone_elses_order_cannot_be_paid(self, shop: Shop) -> None:
        order = shop.placed()
        other = shop.api.user_token()[1]
        assert shop.pay(order, token=other).status_code == 404
        assert shop.get(order["id"]).json()["status"] == "PLACED"


class TestIdempotencyKeys:
    def test_same_key_same_body_replays_the_first_response(self, shop: Shop) -> None:
        pet = shop.pet()
        key = {"Idempotency-Key": str(uuid.uuid4())}
        first = shop.order(pet["id"], shop.token, headers=key)
        again = shop.order(pet["id"], shop.token, headers=key)
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["location"] == first.headers["location"]
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        assert len(_rows(shop.api, Order, pet_id=uuid.UUID(pet["id"]))) == 1

    def test_same_key_other_body_is_422(self, shop: Shop) -> None:
        key = {"Idempotency-Key": "k-" + uuid.uuid4().hex}
        assert shop.order(shop.pet()["id"], shop.token, headers=key).status_code == 201
        r = shop.order(shop.pet()["id"], shop.token, headers=key)
        assert r.status_code == 422
        assert r.json()["errors"][0]["code"] == "idempotency_key_reused"

    def test_keys_are_per_caller(self, shop: Shop) -> None:
        key = {"Idempotency-Key": "shared-key"}
        pet = shop.pet()
        assert shop.order(pet["id"], shop.token, headers=key).status_code == 201
        other = shop.api.user_token()[1]
        r = shop.order(pet["id"], other, headers=key)
        assert r.status_code == 409  # ran for real: the pet is taken, not a replay
        assert "idempotent-replayed" not in r.headers

    def test_a_client_error_is_replayed_too(self, shop: Shop) -> None:
        order = shop.placed()
        key = {"Idempotency-Key": str(uuid.uuid4())}
        declined = {**CARD, "number": "4000000000000002"}
        assert shop.pay(order, source=declined, headers=key).status_code == 402
        r = shop.pay(order, source=declined, headers=key)
        assert r.status_code == 402
        assert r.headers["idempotent-replayed"] == "true"
        assert r.headers["content-type"] == "application/problem+json"
        assert len(_rows(shop.api, Payment, order_id=uuid.UUID(order["id"]))) == 1

    def test_a_payment_replay_charges_once(self, shop: Shop) -> None:
        order = shop.placed()
        key = {"Idempotency-Key": str(uuid.uuid4())}
        first = shop.pay(order, headers=key)
        again = shop.pay(order, headers=key)
        assert first.status_code == again.status_code == 200
        assert again.json() == first.json()
        assert len(_rows(shop.api, Payment, order_id=uuid.UUID(order["id"]))) == 1

    def test_a_processor_error_is_not_stored(self, shop: Shop) -> None:
        order = shop.placed()
        key = {"Idempotency-Key": str(uuid.uuid4())}
        failing = {**CARD, "number": "4000000000000119"}
        assert shop.pay(order, source=failing, headers=key).status_code == 502
        r = shop.pay(order, source=failing, headers=key)
        assert r.status_code == 502
        assert "idempotent-replayed" not in r.headers
        assert len(_rows(shop.api, Payment, order_id=uuid.UUID(order["id"]))) == 2

    def test_a_guest_replay_returns_the_token_which_is_stored_encrypted(self, shop: Shop) -> None:
        """Guests share a scope per client address (a NAT), so a replay needs the original key,
        which for a guest must be unguessable: a short key that another guest at the same
        address could send with the same (public) petId is refused outright."""
        pet = shop.pet()
        guessable = shop.order(pet["id"], headers={"Idempotency-Key": "order-1"})
        assert guessable.status_code == 422
        assert guessable.json()["errors"][0]["field"] == "Idempotency-Key"
        assert shop.pet_status(pet["id"]) == "AVAILABLE"
        key = {"Idempotency-Key": str(uuid.uuid4())}
        first = shop.order(pet["id"], headers=key)
        again = shop.order(pet["id"], headers=key)
        assert first.status_code == again.status_code == 201
        token = first.json()["guestToken"]
        assert again.json()["guestToken"] == token
        neighbour = shop.order(pet["id"], headers={"Idempotency-Key": str(uuid.uuid4())})
        assert neighbour.status_code == 409  # ran for real: the pet is taken, no token in it
        assert "idempotent-replayed" not in neighbour.headers
        assert token not in neighbour.text
        (record,) = _rows(shop.api, IdempotencyRecord, key=key["Idempotency-Key"])
        assert token.encode() not in record.response_body
        assert pet["id"].encode() not in record.response_body

    @pytest.mark.parametrize(
        ("key", "accepted"),
        [
            ("1", False),
            ("order-1", False),
            ("a" * 64, False),  # long, but a pattern
            ("0123456789" * 4, False),  # 10 distinct characters
            ("5f1c8a0e8d3b4c1e9a552f4a1e3f9b10-", True),  # 33 random-looking characters
            ("5F1C8A0E-8D3B-4C1E-9A55-2F4A1E3F9B10", True),  # a UUID (v4) in capitals
            ("019b4139-1234-7abc-8def-123456789abc", True),  # a UUID v7
            ("00000000-0000-0000-0000-000000000000", False),  # the nil UUID
            ("00000000-0000-0000-0000-000000000001", False),  # not a random version
            ("5f1c8a0e-8d3b-1c1e-9a55-2f4a1e3f9b10", False),  # v1: a clock and a MAC address
            ("00000000-0000-4000-8000-000000000001", False),  # v4 in form, a pattern in fact
            ("5f1c8a0e-8d3b-4c1e-9a55", False),  # random-looking, but 23 characters
            ("x" * 28 + "-kq7Z", False),  # 33, but only 6 distinct
        ],
    )
    def test_a_guest_must_send_an_unguessable_key(
        self, shop: Shop, key: str, accepted: bool
    ) -> None:
        pet = shop.pet()
        r = shop.order(pet["id"], headers={"Idempotency-Key": key})
        if accepted:
            assert r.status_code == 201, r.text
            return
        assert r.status_code == 422, r.text
        (error,) = r.json()["errors"]
        assert (error["field"], error["code"]) == ("Idempotency-Key", "idempotency_key_guessable")
        # A member keeps today's rules: any key is fine with a token.
        member = shop.order(pet["id"], shop.token, headers={"Idempotency-Key": key})
        assert member.status_code == 201

    @pytest.mark.parametrize(("age", "code"), [(0, "in_progress"), (180, "unavailable")])
    def test_an_abandoned_key_is_taken_over(self, shop: Shop, age: int, code: str) -> None:
        """A key left in progress by a request that died blocks retries only briefly."""
        pet = shop.pet()
        key = "abandoned-" + uuid.uuid4().hex
        assert (
            shop.order(pet["id"], shop.token, headers={"Idempotency-Key": key}).status_code == 201
        )

        async def interrupt(db: Database) -> None:
            stmt = (
                update(IdempotencyRecord)
                .where(IdempotencyRecord.key == key)
                .values(state="in_progress", created_at=utcnow() - timedelta(seconds=age))
            )
            await db.run(shop.api.tenant or "", lambda s: s.execute(stmt), write=True)

        run_db(shop.api.settings, interrupt)
        r = shop.order(pet["id"], shop.token, headers={"Idempotency-Key": key})
        assert r.status_code == 409
        assert r.json()["errors"][0]["code"] == code

    def test_keys_expire_after_24_hours(self, shop: Shop) -> None:
        key = "old-" + uuid.uuid4().hex
        assert (
            shop.order(shop.pet()["id"], shop.token, headers={"Idempotency-Key": key}).status_code
            == 201
        )

        async def age(db: Database) -> None:
            stmt = (
                update(IdempotencyRecord)
                .where(IdempotencyRecord.key == key)
                .values(created_at=utcnow() - timedelta(hours=24, seconds=1))
            )
            await db.run(shop.api.tenant or "", lambda s: s.execute(stmt), write=True)

        run_db(shop.api.settings, age)
        r = shop.order(shop.pet()["id"], shop.token, headers={"Idempotency-Key": key})
        assert r.status_code == 201, r.text

    def test_the_housekeeping_job_purges_expired_keys(self, shop: Shop) -> None:
        from services.shared import idempotency

        key = "purge-" + uuid.uuid4().hex
        shop.order(shop.pet()["id"], shop.token, headers={"Idempotency-Key": key})

        async def age_and_purge(db: Database) -> int:
            stmt = (
                update(IdempotencyRecord)
                .where(IdempotencyRecord.key == key)
                .values(created_at=utcnow() - timedelta(hours=25))
            )
            await db.run(shop.api.tenant or "", lambda s: s.execute(stmt), write=True)
            return await idempotency.purge_expired(db)

        assert run_db(shop.api.settings, age_and_purge) >= 1
        assert _rows(shop.api, IdempotencyRecord, key=key) == []


def test_a_pet_with_orders_cannot_be_deleted(shop: Shop) -> None:
    order = shop.placed()
    r = shop.api.request("DELETE", f"/pets/{order['petId']}", shop.admin)
    assert r.status_code == 409
    assert r.json()["errors"][0]["code"] == "has_orders"
    assert shop.get(order["id"]).status_code == 200


def test_every_status_change_and_payment_is_written_to_the_outbox(shop: Shop) -> None:
    """Events are rows written in the same transaction as the change (the outbox)."""
    from models import WebhookEvent

    order = shop.placed()
    shop.pay(order)
    shop.api.request("DELETE", f"/orders/{order['id']}", shop.token)
    events = sorted(_rows(shop.api, WebhookEvent), key=lambda e: e.created_at)
    changes = [
        (e.payload["previousStatus"], e.payload["newStatus"], e.payload["changedBy"])
        for e in events
        if e.event_type == "order.statusChanged" and e.payload["order"]["id"] == order["id"]
    ]
    assert changes == [("PLACED", "APPROVED", "system"), ("APPROVED", "CANCELLED", "customer")]
    (paid,) = [e for e in events if e.event_type == "payment.succeeded"]
    assert paid.payload["payment"]["source"]["number"] == "************4242"
    assert paid.payload["receipt"]["receiptUrl"] == f"/v1/orders/{order['id']}"
    assert "4242424242424242" not in str(paid.payload)


def test_the_pets_adopt_link_is_there_only_while_it_is_available(shop: Shop) -> None:
    pet = shop.pet()
    assert pet["links"]["adopt"] == "http://testserver/v1/orders"
    shop.order(pet["id"], shop.token)
    assert "adopt" not in shop.api.request("GET", f"/pets/{pet['id']}").json()["links"]


def test_a_token_without_the_scope_is_403_not_a_guest_order(shop: Shop) -> None:
    from auth.keys import key_ring
    from auth.tokens import TokenService

    settings = shop.api.settings  # another issuer over the same var/ keys, as a second worker
    tokens = TokenService(key_ring(settings), settings.jwt_issuer, settings.token_ttl_seconds)
    narrow = tokens.issue(
        uuid.UUID(shop.user["id"]), "user", shop.api.tenant or "", frozenset({"read:pets"})
    ).token
    pet = shop.pet()
    r = shop.order(pet["id"], narrow)
    assert r.status_code == 403
    assert shop.pet_status(pet["id"]) == "AVAILABLE"
    order = shop.placed()
    assert shop.get(order["id"], narrow).status_code == 403


def test_a_reserved_pets_status_follows_its_order(shop: Shop) -> None:
    from tests.conftest import PET

    order = shop.placed()
    path = f"/pets/{order['petId']}"
    r = shop.api.request("PUT", path, shop.admin, json={**PET, "status": "AVAILABLE"})
    assert r.status_code == 409
    assert r.json()["errors"][0]["code"] == "reserved"
    renamed = shop.api.request(
        "PUT", path, shop.admin, json={**PET, "status": "PENDING", "name": "Rex"}
    )
    assert renamed.status_code == 200  # other fields may still change
    assert shop.pet_status(order["petId"]) == "PENDING"


def test_a_rejected_card_does_not_burn_the_idempotency_key(shop: Shop) -> None:
    """Invalid input is not a stored result: the client fixes the card and retries with the
    same key (Stripe's semantics)."""
    order = shop.placed()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    typo = {**CARD, "number": "4242424242424241"}
    assert shop.pay(order, source=typo, headers=key).status_code == 422
    fixed = shop.pay(order, headers=key)
    assert fixed.status_code == 200, fixed.text
    assert "idempotent-replayed" not in fixed.headers


def test_card_data_never_reaches_the_logs(shop: Shop, caplog: pytest.LogCaptureFixture) -> None:
    """Declined, invalid and malformed card payments: the number and CVC appear in no log."""
    import logging

    order = shop.placed()
    with caplog.at_level(logging.DEBUG):
        shop.pay(order, source={**CARD, "number": "4000000000000002", "cvc": "987"})
        shop.pay(order, source={**CARD, "number": "4000000000000119", "cvc": "987"})
        shop.pay(order, source={**CARD, "number": "4242424242424241", "cvc": "987"})
        shop.pay(order, source={**CARD, "number": "4242-4242-4242", "cvc": "98x"})
        assert shop.pay(order, source={**CARD, "cvc": "987"}).status_code == 200
    standard = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)
    logged = " ".join(
        r.getMessage() + str({k: v for k, v in r.__dict__.items() if k not in standard})
        for r in caplog.records
    )  # messages and structured extras; not timestamps, where short digit runs occur by chance
    assert "/payment" in logged  # the requests were logged
    for secret in ("4000000000000002", "4000000000000119", "4242424242424241", "4242-4242",
                   "4242424242424242", "987", "98x"):  # fmt: skip
        assert secret not in logged
