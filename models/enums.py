"""The vocabularies of spec/openapi.yaml as StrEnums, values exactly as the spec spells them.

Columns stay ``String``: a StrEnum member *is* its value (``PetStatus.AVAILABLE == "AVAILABLE"``),
so rows written before these existed and rows written now compare and store alike. The boundary
test (tests/unit/test_domain_rules.py) checks each enum against the spec."""

from __future__ import annotations

from enum import StrEnum


class Species(StrEnum):
    DOG = "DOG"
    CAT = "CAT"
    RABBIT = "RABBIT"
    BIRD = "BIRD"
    REPTILE = "REPTILE"
    OTHER = "OTHER"


class PetStatus(StrEnum):
    AVAILABLE = "AVAILABLE"
    PENDING = "PENDING"
    ADOPTED = "ADOPTED"
    NOT_AVAILABLE = "NOT_AVAILABLE"


class PetSize(StrEnum):
    SMALL = "SMALL"
    MEDIUM = "MEDIUM"
    LARGE = "LARGE"


class Gender(StrEnum):
    MALE = "MALE"
    FEMALE = "FEMALE"
    UNKNOWN = "UNKNOWN"


class Currency(StrEnum):
    USD = "USD"
    EUR = "EUR"
    GBP = "GBP"
    CAD = "CAD"
    AUD = "AUD"


class OrderStatus(StrEnum):
    PLACED = "PLACED"
    APPROVED = "APPROVED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"


class PaymentStatus(StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class DeliveryStatus(StrEnum):
    """A webhook delivery (WebhookDelivery.status)."""

    PENDING = "PENDING"
    DELIVERING = "DELIVERING"
    DELIVERED = "DELIVERED"
    DEAD = "DEAD"


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


class UserStatus(StrEnum):
    """An account's standing (Admin API, Update User Status): only ACTIVE accounts get tokens,
    and a token of an account that is not ACTIVE is refused."""

    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    DEACTIVATED = "DEACTIVATED"


class ContactMethod(StrEnum):
    EMAIL = "EMAIL"
    PHONE = "PHONE"
    SMS = "SMS"


class AccountHolderType(StrEnum):
    INDIVIDUAL = "individual"
    COMPANY = "company"


class CardBrand(StrEnum):
    VISA = "VISA"
    MASTERCARD = "MASTERCARD"
    AMEX = "AMEX"
    DISCOVER = "DISCOVER"
    JCB = "JCB"
    DINERS = "DINERS"
    UNIONPAY = "UNIONPAY"


class WebhookEventType(StrEnum):
    ORDER_STATUS_CHANGED = "order.statusChanged"
    PAYMENT_SUCCEEDED = "payment.succeeded"


class ChangedBy(StrEnum):
    """Who moved an order (OrderStatusChangedEvent.changedBy)."""

    SYSTEM = "system"
    CUSTOMER = "customer"
    STAFF = "staff"
