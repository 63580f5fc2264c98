"""The domain refuses what the spec refuses, without the OpenAPI validator.

Boundary values are derived from spec/openapi.yaml for every writable field of Create/Replace
Pet, Create/Update User, Place Order and Pay Order (card and bank account sources): length
limits ±1, numeric limits ±1, every enum member and one non-member, a pattern violation, too
many decimal places. Each value is sent twice, in one body that is otherwise valid:

- over REST, through the real Connexion app (request validation on): refused = 400/422 naming
  the field;
- straight to ``schemas.load_*`` + the service (what GraphQL, gRPC, MQTT and MCP call): refused
  = InvalidInput naming the field.

Both must agree, and a value the spec refuses must be refused by both. Removing a rule from a
command makes its REST case still refuse (the validator) and its domain case accept: the test
fails. Other outcomes (201, 404 for a payment to an unknown order, 409) count as "accepted".
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
import yaml

from auth.keys import KeyRing, SigningKey, new_private_key
from auth.tokens import TokenService
from infra.counters import MemoryCounterStore
from infra.payments import TestProcessor
from models import enums
from models.database import Database
from schemas.orders import load_order, load_payment
from schemas.pets import load_pet, load_pet_query
from schemas.users import load_new_user, load_user
from services.accounts.roles import RoleLookup
from services.accounts.users import NewUser, UserData, UserService
from services.catalogue.pets import PetData, PetQuery, PetService
from services.orders.orders import STAFF_TARGETS, NewOrder, OrderAccess
from services.orders.payment_sources import BankAccount, Card
from services.orders.payments import PaymentInput
from services.orders.service import OrderService
from services.shared.errors import DomainError, InvalidInput
from services.shared.pagination import DEFAULT_LIMIT, MAX_PAGE_SIZE, PageRequest
from services.shared.principal import ROLE_SCOPES, Principal
from services.shared.throttle import FailureThrottle
from tests.conftest import PET, Api

SPEC = yaml.safe_load((Path(__file__).parents[2] / "spec" / "openapi.yaml").read_text())
COMPONENTS = SPEC["components"]["schemas"]

# --------------------------------------------------------------------------- the spec, resolved


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """$ref and allOf merged into one flat schema (enough for this spec's writable fields)."""
    if "$ref" in schema:
        return resolve(COMPONENTS[schema["$ref"].rsplit("/", 1)[1]])
    merged = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema.get("allOf", []):
        merged = {**resolve(part), **merged}
    return merged


def writable(component: str) -> dict[str, dict[str, Any]]:
    props = resolve(COMPONENTS[component]).get("properties", {})
    return {k: resolve(v) for k, v in props.items() if not resolve(v).get("readOnly")}


# One value that breaks each pattern (the spec's own regexes check that it does).
PATTERN_BREAKERS = {
    r"^[^\x00]*$": "a\x00b",
    r"^[A-Za-z0-9._-]+$": "john doe",
    r"^[^\x00\s]+@[^\x00\s]+$": "john.example.com",
    r"^\+[1-9][0-9]{6,14}$": "2025551234",
    r"^[0-9*]{12,19}$": "4242-4242-4242-4242",
    r"^[0-9]{3,4}$": "12a",
    r"^[A-Za-z]{2}$": "U1",
    r"^[A-Z]{2}$": "de",
    r"^[A-Z]{2}[0-9]{2}[A-Z0-9*]{11,30}$": "de89370400440532013000",
    r"^[0-9]{9}$": "11000000a",
    r"^[0-9*]{4,17}$": "12ab",
    r"^(0|[1-9][0-9]{0,7})(\.[0-9]{1,2})?$": "1.234",
}


def email_of_length(n: int, tag: str) -> str:
    """A syntactically ordinary address of exactly ``n`` characters (labels ≤ 60)."""
    rest = n - len(tag) - 1 - len(".com")
    labels = []
    while rest > 0:
        size = min(60, rest)
        if rest - size == 1:  # a lone dot cannot end the domain
            size -= 1
        labels.append("a" * size)
        rest -= size + 1
    return f"{tag}@{'.'.join(labels)}.com"


def text_of_length(field: str, n: int, tag: str) -> str:
    if field == "email":
        return email_of_length(n, tag)
    if field == "username":
        return (tag + "u" * n)[:n] if n >= len(tag) else "u" * n
    return "a" * n


@dataclass(frozen=True)
class Case:
    field: str  # wire name, dotted when nested
    value: Any
    refuse: bool  # what the spec says (the domain may refuse more: Luhn, expiry, ...)
    label: str


def boundary_cases(props: dict[str, dict[str, Any]], prefix: str = "") -> Iterator[Case]:
    for name, schema in props.items():
        field = prefix + name
        kind = schema.get("type")
        if "enum" in schema and len(schema["enum"]) > 1:
            for member in schema["enum"]:
                yield Case(field, member, False, f"{field}={member}")
            yield Case(field, "NOT_A_MEMBER", True, f"{field}=non-member")
        if kind == "string" and "enum" not in schema:
            low, high = schema.get("minLength"), schema.get("maxLength")
            tag = uuid.uuid4().hex[:8]
            if low:
                yield Case(field, text_of_length(name, low - 1, tag), True, f"{field}:min-1")
                yield Case(field, text_of_length(name, low, tag), False, f"{field}:min")
            if high:
                yield Case(field, text_of_length(name, high, tag), False, f"{field}:max")
                yield Case(field, text_of_length(name, high + 1, tag), True, f"{field}:max+1")
            if "pattern" in schema:
                bad = PATTERN_BREAKERS[schema["pattern"]]
                assert not re.search(schema["pattern"], bad), (field, bad)
                yield Case(field, bad, True, f"{field}:pattern")
        if kind == "integer":
            low, high = schema.get("minimum"), schema.get("maximum")
            if low is not None:
                yield Case(field, low - 1, True, f"{field}:min-1")
                yield Case(field, low, False, f"{field}:min")
            if high is not None:
                yield Case(field, high, False, f"{field}:max")
                yield Case(field, high + 1, True, f"{field}:max+1")
        if kind == "object" and schema.get("properties"):
            nested = {k: resolve(v) for k, v in schema["properties"].items()}
            yield from boundary_cases(nested, f"{field}.")


def money_cases(field: str) -> Iterator[Case]:
    pattern = COMPONENTS["Money"]["pattern"]
    assert re.search(pattern, "99999999.99")
    assert not re.search(pattern, "100000000")
    yield Case(field, "0", False, f"{field}:min")
    yield Case(field, "-1", True, f"{field}:min-1")
    yield Case(field, "99999999.99", False, f"{field}:max")
    yield Case(field, "100000000", True, f"{field}:max+1")
    yield Case(field, "1.234", True, f"{field}:places")
    yield Case(field, "1.5", False, f"{field}:one-place")
    for text in ("01", "1e2", "+1", "1.", " 1"):  # numbers the pattern does not write so
        assert not re.search(pattern, text)
        yield Case(field, text, True, f"{field}:written-{text.strip()}")


def _is_money(schema: dict[str, Any]) -> bool:
    return bool(schema.get("pattern") == COMPONENTS["Money"]["pattern"])


def cases_for(component: str, skip: tuple[str, ...] = ()) -> list[Case]:
    props = {k: v for k, v in writable(component).items() if k not in skip}
    money = [k for k, v in props.items() if _is_money(v)]
    found = list(boundary_cases({k: v for k, v in props.items() if k not in money}))
    for name in money:
        found.extend(money_cases(name))
    return found


# --------------------------------------------------------------------------- the bodies

CARD = {"object": "card", "number": "4242424242424242", "cvc": "123", "expMonth": 12,
        "expYear": 2030, "name": "J. Doe"}  # fmt: skip
SEPA = {"object": "bank_account", "accountHolderName": "Jane Doe", "country": "DE",
        "iban": "DE89370400440532013000"}  # fmt: skip
ACH = {"object": "bank_account", "accountHolderName": "Jane Doe", "country": "US",
       "routingNumber": "110000000", "accountNumber": "000123456789"}  # fmt: skip


def with_value(body: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    out = {**body}
    head, _, rest = field.partition(".")
    if rest:
        out[head] = with_value(dict(out.get(head) or {}), rest, value)
    else:
        out[head] = value
    return out


def card_cases() -> list[Case]:
    found = [
        Case(f"source.{c.field}", c.value, c.refuse, f"card.{c.label}")
        for c in cases_for("BankCard", skip=("object",))
    ]
    # The pattern's own length limits (12 to 19 digits), on Luhn-valid VISA numbers.
    found += [
        Case("source.number", "42424242424", True, "card.number:11-digits"),
        Case("source.number", "4242424242424242", False, "card.number:16-digits"),
        Case("source.number", "4000000000000000006", False, "card.number:19-digits"),
        Case("source.number", "42424242424242424242", True, "card.number:20-digits"),
        Case("source.cvc", "12", True, "card.cvc:2-digits"),
        Case("source.cvc", "12345", True, "card.cvc:5-digits"),
    ]
    return found


def bank_cases() -> list[Case]:
    found = []
    for c in cases_for("BankAccount", skip=("object",)):
        base = "ach" if c.field in ("routingNumber", "accountNumber") else "sepa"
        found.append(Case(f"source.{c.field}", c.value, c.refuse, f"{base}.{c.label}"))
    found += [
        Case("source.accountNumber", "1234", False, "ach.accountNumber:4-digits"),
        Case("source.accountNumber", "123", True, "ach.accountNumber:3-digits"),
        Case("source.accountNumber", "1" * 17, False, "ach.accountNumber:17-digits"),
        Case("source.accountNumber", "1" * 18, True, "ach.accountNumber:18-digits"),
        Case("source.routingNumber", "11000000", True, "ach.routingNumber:8-digits"),
    ]
    return found


PET_CASES = cases_for("Pet")
USER_CASES = cases_for("NewUser")
PROFILE_CASES = cases_for("UserUpdate")
PAYMENT_CASES = cases_for("OrderPayment", skip=("source",)) + card_cases() + bank_cases()


# --------------------------------------------------------------------------- the two callers


class Domain:
    """The services on a private Database and event loop (no Connexion, no validator)."""

    def __init__(self, settings: Any) -> None:
        self.runner = asyncio.Runner()
        self.db: Database = self.runner.run(self._db(settings.database_url))
        roles = RoleLookup(self.db, 5)
        self.pets = PetService(self.db)
        throttle = FailureThrottle(MemoryCounterStore(), 100, 60)
        tokens = TokenService(KeyRing(None, [SigningKey.of(new_private_key())]), "petstore", 60)
        self.users = UserService(self.db, throttle, roles, tokens)
        self.orders = OrderService(self.db, TestProcessor())
        self.tenant = str(uuid.uuid4())
        self.staff = Principal(uuid.uuid4(), enums.Role.ADMIN, ROLE_SCOPES["admin"], self.tenant)
        self.pet_id = self.run(lambda: self.pets.create(self.staff, load_pet(PET))).id
        account = self.run(lambda: self.users.register(self.staff, load_new_user(new_user())))
        self.user_id: uuid.UUID = account.user.id
        self.user = Principal(account.user.id, enums.Role.USER, ROLE_SCOPES["user"], self.tenant)

    @staticmethod
    async def _db(url: str) -> Database:
        return Database(url)

    def run(self, call: Callable[[], Awaitable[Any]]) -> Any:
        async def go() -> Any:
            return await call()

        return self.runner.run(go())

    def refused(self, call: Callable[[], Awaitable[Any]]) -> set[str]:
        """The fields named by InvalidInput; empty when accepted (other errors included)."""
        try:
            self.run(call)
        except InvalidInput as exc:
            return {e.field for e in exc.errors}
        except DomainError:
            pass
        return set()

    def close(self) -> None:
        self.runner.run(self.db.dispose())
        self.runner.close()


def new_user(**fields: Any) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:10]
    return {"username": f"u{tag}", "email": f"u{tag}@example.com", "password": "password-123",
            "firstName": "Test", "lastName": "User", **fields}  # fmt: skip


class Rest:
    """The same calls over HTTP through the real Connexion app, in one tenant."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.admin = api.admin_token()
        self.pet_id = api.create_pet(self.admin)["id"]
        user = api.register(
            **{k: v for k, v in new_user().items() if k not in ("username", "password")}
        )
        self.user_id = user["id"]
        self.user = api.login(user["username"])

    def refused(self, method: str, path: str, body: Any, token: str | None) -> set[str]:
        extra = {"Idempotency-Key": uuid.uuid4().hex}
        r = self.api.request(method, path, token, json=body, headers=extra)
        assert r.status_code < 500, r.text
        if r.status_code in (400, 422):
            return {e["field"] for e in r.json().get("errors", [])}
        return set()


@pytest.fixture(scope="module")
def domain(settings: Any) -> Iterator[Domain]:
    d = Domain(settings)
    yield d
    d.close()


@pytest.fixture(scope="module")
def rest(client: Any, settings: Any) -> Rest:
    return Rest(Api(client, settings, str(uuid.uuid4())))


def names(refused: set[str], field: str) -> bool:
    """The field, or an object around it, was named. (REST names ``source`` alone when a value
    breaks an enum inside the oneOf, where it cannot tell which branch was meant.)"""
    parts = field.split(".")
    return any(".".join(parts[:i]) in refused for i in range(1, len(parts) + 1))


def agree(case: Case, over_rest: set[str], in_domain: set[str]) -> None:
    rest_refused, domain_refused = names(over_rest, case.field), case.field in in_domain
    assert rest_refused == domain_refused, (
        f"{case.label}: REST {'refused' if rest_refused else 'accepted'} ({sorted(over_rest)}), "
        f"the domain {'refused' if domain_refused else 'accepted'} ({sorted(in_domain)})"
    )
    if case.refuse:
        assert domain_refused, f"{case.label}: the spec refuses it, the domain did not"


def ids(cases: list[Case]) -> list[str]:
    return [c.label for c in cases]


# --------------------------------------------------------------------------- the boundary tests


@pytest.mark.parametrize("case", PET_CASES, ids=ids(PET_CASES))
def test_create_pet(case: Case, rest: Rest, domain: Domain) -> None:
    body = with_value(PET, case.field, case.value)
    over_rest = rest.refused("POST", "/pets", body, rest.admin)
    in_domain = domain.refused(lambda: domain.pets.create(domain.staff, load_pet(body)))
    agree(case, over_rest, in_domain)


@pytest.mark.parametrize("case", PET_CASES, ids=ids(PET_CASES))
def test_replace_pet(case: Case, rest: Rest, domain: Domain) -> None:
    body = with_value(PET, case.field, case.value)
    over_rest = rest.refused("PUT", f"/pets/{rest.pet_id}", body, rest.admin)
    pet_id = domain.pet_id
    in_domain = domain.refused(lambda: domain.pets.replace(domain.staff, pet_id, load_pet(body)))
    agree(case, over_rest, in_domain)


@pytest.mark.parametrize("case", USER_CASES, ids=ids(USER_CASES))
def test_create_user(case: Case, rest: Rest, domain: Domain) -> None:
    body = with_value(new_user(), case.field, case.value)
    over_rest = rest.refused("POST", "/users", body, None)
    in_domain = domain.refused(lambda: domain.users.register(domain.staff, load_new_user(body)))
    agree(case, over_rest, in_domain)


@pytest.mark.parametrize("case", PROFILE_CASES, ids=ids(PROFILE_CASES))
def test_update_user(case: Case, rest: Rest, domain: Domain) -> None:
    profile = {k: v for k, v in new_user().items() if k != "password"}
    body = with_value(profile, case.field, case.value)
    over_rest = rest.refused("PUT", f"/users/{rest.user_id}", body, rest.user)
    who, user_id = domain.user, domain.user_id
    in_domain = domain.refused(lambda: domain.users.update(who, user_id, load_user(body)))
    agree(case, over_rest, in_domain)


@pytest.mark.parametrize("valid", [True, False], ids=["petId:uuid", "petId:not-a-uuid"])
def test_place_order(valid: bool, rest: Rest, domain: Domain) -> None:
    schema = writable("Order")
    assert list(schema) == ["petId"]
    assert schema["petId"]["format"] == "uuid"
    case = Case("petId", None, not valid, "petId")
    over_rest = rest.refused(
        "POST", "/orders", {"petId": rest.pet_id if valid else "not-a-uuid"}, rest.user
    )
    body = {"petId": str(domain.pet_id) if valid else "not-a-uuid"}
    in_domain = domain.refused(lambda: domain.orders.create(domain.user, load_order(body)))
    agree(case, over_rest, in_domain)


def payment_body(case: Case) -> dict[str, Any]:
    source = (
        ACH if case.label.startswith("ach.") else SEPA if case.label.startswith("sepa.") else CARD
    )
    return with_value({"amount": "150.00", "currency": "USD", "source": source}, case.field,
                      case.value)  # fmt: skip


@pytest.mark.parametrize("case", PAYMENT_CASES, ids=ids(PAYMENT_CASES))
def test_pay_order(case: Case, rest: Rest, domain: Domain) -> None:
    """To an order that does not exist: a body the rules accept ends in 404 on both sides, so
    nothing is charged; a refused one never gets that far."""
    body = payment_body(case)
    over_rest = rest.refused("POST", f"/orders/{uuid.uuid4()}/payment", body, rest.user)
    access = OrderAccess(domain.user)
    in_domain = domain.refused(lambda: domain.orders.pay(access, uuid.uuid4(), load_payment(body)))
    agree(case, over_rest, in_domain)


# --------------------------------------------------------------------------- the vocabularies


@pytest.mark.parametrize(
    ("enum", "component"),
    [
        (enums.Species, "Species"),
        (enums.PetStatus, "PetStatus"),
        (enums.PetSize, "PetSize"),
        (enums.Gender, "Gender"),
        (enums.Currency, "Currency"),
        (enums.OrderStatus, "OrderStatus"),
        (enums.PaymentStatus, "PaymentStatus"),
        (enums.WebhookEventType, "WebhookEventType"),
    ],
)
def test_enum_matches_the_spec(enum: type[StrEnum], component: str) -> None:
    assert [m.value for m in enum] == COMPONENTS[component]["enum"]


def test_inline_vocabularies_match_the_spec() -> None:
    def values(component: str, prop: str) -> list[str]:
        found: list[str] = resolve(COMPONENTS[component])["properties"][prop]["enum"]
        return found

    assert [m.value for m in enums.Role] == values("User", "role")
    assert [m.value for m in enums.DeliveryStatus] == values("WebhookDelivery", "status")
    assert [m.value for m in enums.ContactMethod] == values("Preferences", "contactMethod")
    assert [m.value for m in enums.AccountHolderType] == values("BankAccount", "accountHolderType")
    assert [m.value for m in enums.CardBrand] == values("BankCard", "brand")


# --------------------------------------------------------------------------- every bad field


def fields_of(call: Callable[[], Any]) -> set[str]:
    with pytest.raises(InvalidInput) as caught:
        call()
    return {e.field for e in caught.value.errors}


def test_pet_lists_every_bad_field() -> None:
    bad = {"name": "", "species": "DRAGON", "ageMonths": -1, "price": "1.234", "currency": "XYZ",
           "status": "SOLD", "breed": "b" * 101, "size": "HUGE", "color": "c" * 51,
           "gender": "X", "description": "d" * 2001,
           "medicalInfo": {"notes": "n" * 1001, "vaccinated": "yes"}}  # fmt: skip
    assert fields_of(lambda: load_pet(bad)) == {
        "name", "species", "ageMonths", "price", "currency", "status", "breed", "size", "color",
        "gender", "description", "medicalInfo.notes", "medicalInfo.vaccinated",
    }  # fmt: skip
    # The command itself, as another protocol would build it:
    assert fields_of(
        lambda: PetData(name="x" * 51, species="DRAGON", age_months=601, price=Decimal("-1"))
    ) == {"name", "species", "ageMonths", "price"}


def test_marshmallow_type_errors_become_invalid_input() -> None:
    assert fields_of(lambda: load_pet({"name": 5, "species": "DOG", "ageMonths": "1"})) == {
        "name", "ageMonths", "price",
    }  # fmt: skip
    assert fields_of(lambda: load_payment({"amount": 5, "currency": "USD", "source": 1})) == {
        "amount", "source",
    }  # fmt: skip
    assert fields_of(lambda: load_payment({"amount": "1", "currency": "USD",
                                           "source": {"object": "card", "expMonth": "12"}})) == {
        "source.number", "source.cvc", "source.expMonth", "source.expYear",
    }  # fmt: skip


def test_user_lists_every_bad_field() -> None:
    bad = {"username": "a b", "email": "nope", "password": "short", "firstName": "",
           "lastName": "l" * 101, "phone": "555",
           "preferences": {"contactMethod": "FAX", "preferredSpecies": ["DOG", "DRAGON"],
                           "newsletter": "yes", "extra": 1}}  # fmt: skip
    assert fields_of(lambda: load_new_user(bad)) == {
        "username", "email", "password", "firstName", "lastName", "phone",
        "preferences.contactMethod", "preferences.preferredSpecies[1]", "preferences.newsletter",
        "preferences.extra",
    }  # fmt: skip
    assert fields_of(lambda: UserData(username="ab", email="x", first_name="", last_name="")) == {
        "username",
        "email",
        "firstName",
        "lastName",
    }
    assert "password" in fields_of(
        lambda: NewUser(username="abc", email="a@b.c", first_name="A", last_name="B")
    )


def test_payment_lists_every_bad_field_and_never_echoes_card_data() -> None:
    number, cvc = "4242424242424241", "98765"
    card = Card(number=number, cvc=cvc, exp_month=13, exp_year=2101, name="n" * 101,
                address={"addressCountry": "U1", "addressLine1": "x" * 201})  # fmt: skip
    with pytest.raises(InvalidInput) as caught:
        PaymentInput(Decimal("1.001"), "XYZ", card)
    assert {e.field for e in caught.value.errors} == {
        "amount", "currency", "source.number", "source.cvc", "source.expMonth", "source.expYear",
        "source.name", "source.addressCountry", "source.addressLine1",
    }  # fmt: skip
    text = str(caught.value) + repr(caught.value.errors)
    assert number not in text
    assert cvc not in text
    assert "4241" not in text
    bank = BankAccount(account_holder_name="", country="us", account_holder_type="trust",
                       routing_number="123456789", account_number="12")  # fmt: skip
    assert fields_of(lambda: PaymentInput(Decimal("1"), "USD", bank)) == {
        "source.accountHolderName", "source.country", "source.accountHolderType",
        "source.routingNumber", "source.accountNumber",
    }  # fmt: skip


def test_order_and_query_commands_validate_themselves() -> None:
    assert fields_of(lambda: NewOrder("nope")) == {"petId"}  # type: ignore[arg-type]
    assert NewOrder(str(uuid.UUID(int=1))).pet_id == uuid.UUID(int=1)  # type: ignore[arg-type]
    assert fields_of(
        lambda: PetQuery(species=("DRAGON",), min_age=10, max_age=5, min_price=Decimal("0.001"))
    ) == {"species[0]", "minAge", "minPrice"}
    assert fields_of(lambda: load_pet_query({"sort": "-colour", "minAge": -1})) == {
        "sort", "minAge",
    }  # fmt: skip


def test_order_status_change_vocabulary_matches_the_spec() -> None:
    assert list(STAFF_TARGETS) == COMPONENTS["OrderStatusChange"]["properties"]["status"]["enum"]


def test_staff_status_change_refuses_a_non_member(domain: Domain) -> None:
    staff = domain.staff
    with pytest.raises(InvalidInput) as caught:
        domain.run(lambda: domain.orders.advance(staff, uuid.uuid4(), "PLACED"))
    assert [e.field for e in caught.value.errors] == ["status"]


def test_page_request_owns_defaults_and_clamps() -> None:
    assert PageRequest.of() == PageRequest(1, DEFAULT_LIMIT) == PageRequest.of(None, None)
    assert PageRequest(0, 0) == PageRequest(1, 1)
    assert PageRequest(3, 10_000).limit == MAX_PAGE_SIZE
    assert PageRequest(3, 10).offset == 20
    page = PageRequest(2, 2).slice(list("abcde"))
    assert (list(page.items), page.total, page.total_pages) == (["c", "d"], 5, 3)
    query = load_pet_query({})
    assert (query.page, query.limit) == (1, DEFAULT_LIMIT)
    assert (PetQuery(page=-5, limit=500).paging) == PageRequest(1, MAX_PAGE_SIZE)


def test_rest_lists_every_bad_field_once(rest: Rest) -> None:
    """The REST edge names them too (the validator), so every protocol reports alike."""
    bad = {**PET, "name": "", "species": "DRAGON", "ageMonths": -1, "price": "1.234"}
    assert rest.refused("POST", "/pets", bad, rest.admin) >= {"name", "species", "ageMonths",
                                                                "price"}  # fmt: skip
