"""The Admin API's use cases as one service, built once in the composition root."""

from __future__ import annotations

from models.database import Database
from services.accounts.roles import RoleLookup
from services.admin.audit import AuditLogService
from services.admin.dashboard import DashboardStats, Period, dashboard_stats
from services.admin.orders import OrderAdmin
from services.admin.users import UserAdmin
from services.orders.service import OrderService
from services.shared.principal import Principal


class AdminService:
    def __init__(self, db: Database, roles: RoleLookup, orders: OrderService) -> None:
        self.db = db
        self.users = UserAdmin(db, roles)
        self.orders = OrderAdmin(db, orders)
        self.audit = AuditLogService(db)

    async def dashboard(self, principal: Principal, period: Period) -> DashboardStats:
        """Get Dashboard Stats (admin)."""
        return await dashboard_stats(self.db, principal, period)
