"""SQLAlchemy 2 typed models. No HTTP, no serialization, no business rules."""

from models.audit_log import AuditHead, AuditLog
from models.base import Base, TenantScoped
from models.idempotency import IdempotencyRecord
from models.order import ACTIVE_ORDER_STATUSES, Order
from models.payment import Payment
from models.pet import Pet, PetCount
from models.revoked_token import RevokedToken
from models.user import User
from models.webhook import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)

__all__ = [
    "ACTIVE_ORDER_STATUSES",
    "AuditHead",
    "AuditLog",
    "Base",
    "IdempotencyRecord",
    "Order",
    "Payment",
    "Pet",
    "PetCount",
    "RevokedToken",
    "TenantScoped",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEvent",
    "WebhookSubscription",
]
