"""SQLAlchemy 2 typed models. No HTTP, no serialization, no business rules."""

from models.base import Base, TenantScoped
from models.pet import Pet
from models.user import User

__all__ = ["Base", "Pet", "TenantScoped", "User"]
