"""Indexes for every sort and filter of List Pets (tenant first, then the sort key, then the id
that breaks ties) and for My Orders; ``pet_counts`` (pets per tenant, species and status) kept
exact by triggers on ``pets``, so totals and the inventory never count the table.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

PET_INDEXES = {
    "ix_pets_tenant_created": ("created_at",),
    "ix_pets_tenant_updated": ("updated_at",),
    "ix_pets_tenant_name": ("name",),
    "ix_pets_tenant_age": ("age_months",),
    "ix_pets_tenant_price": ("price",),
    "ix_pets_tenant_status_created": ("status", "created_at"),
    "ix_pets_tenant_species_created": ("species", "created_at"),
}

# SQLite: one trigger per event; an UPSERT adds, an UPDATE takes away.
_SQLITE_ADD = (
    "INSERT INTO pet_counts (tenant_id, species, status, n) "
    "VALUES (NEW.tenant_id, NEW.species, NEW.status, 1) "
    "ON CONFLICT (tenant_id, species, status) DO UPDATE SET n = n + 1;"
)
_SQLITE_TAKE = (
    "UPDATE pet_counts SET n = n - 1 WHERE tenant_id = OLD.tenant_id "
    "AND species = OLD.species AND status = OLD.status;"
)
SQLITE_TRIGGERS = (
    f"CREATE TRIGGER pets_count_insert AFTER INSERT ON pets BEGIN {_SQLITE_ADD} END",
    f"CREATE TRIGGER pets_count_delete AFTER DELETE ON pets BEGIN {_SQLITE_TAKE} END",
    "CREATE TRIGGER pets_count_update AFTER UPDATE OF tenant_id, species, status ON pets "
    "WHEN OLD.tenant_id IS NOT NEW.tenant_id OR OLD.species IS NOT NEW.species "
    f"OR OLD.status IS NOT NEW.status BEGIN {_SQLITE_TAKE} {_SQLITE_ADD} END",
)

POSTGRES_FUNCTION = """
CREATE FUNCTION pets_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE pet_counts SET n = n - 1 WHERE tenant_id = OLD.tenant_id
            AND species = OLD.species AND status = OLD.status;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO pet_counts (tenant_id, species, status, n)
            VALUES (NEW.tenant_id, NEW.species, NEW.status, 1)
            ON CONFLICT (tenant_id, species, status) DO UPDATE SET n = pet_counts.n + 1;
    END IF;
    RETURN NULL;
END $$
"""
POSTGRES_TRIGGERS = (
    "CREATE TRIGGER pets_count_insert_delete AFTER INSERT OR DELETE ON pets "
    "FOR EACH ROW EXECUTE FUNCTION pets_count()",
    "CREATE TRIGGER pets_count_update AFTER UPDATE OF tenant_id, species, status ON pets "
    "FOR EACH ROW WHEN (OLD.tenant_id IS DISTINCT FROM NEW.tenant_id "
    "OR OLD.species IS DISTINCT FROM NEW.species OR OLD.status IS DISTINCT FROM NEW.status) "
    "EXECUTE FUNCTION pets_count()",
)


def upgrade() -> None:
    for name, columns in PET_INDEXES.items():
        op.create_index(name, "pets", ["tenant_id", *columns, "id"])
    op.create_index(
        "ix_orders_tenant_user_created", "orders", ["tenant_id", "user_id", "created_at", "id"]
    )
    op.create_table(
        "pet_counts",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("species", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "species", "status", name=op.f("pk_pet_counts")),
    )
    op.execute(
        "INSERT INTO pet_counts (tenant_id, species, status, n) "
        "SELECT tenant_id, species, status, count(*) FROM pets "
        "GROUP BY tenant_id, species, status"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTION)
        for trigger in POSTGRES_TRIGGERS:
            op.execute(trigger)
    else:
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS pets_count_update ON pets")
        op.execute("DROP TRIGGER IF EXISTS pets_count_insert_delete ON pets")
        op.execute("DROP FUNCTION IF EXISTS pets_count()")
    else:
        for name in ("pets_count_insert", "pets_count_delete", "pets_count_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("pet_counts")
    op.drop_index("ix_orders_tenant_user_created", table_name="orders")
    for name in PET_INDEXES:
        op.drop_index(name, table_name="pets")
