"""Create click_windows, clicks and sink_offsets.

Revision ID: r0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "click_windows",
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("clicks", sa.BigInteger, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("url", "window_start", name="click_windows_pkey"),
    )
    op.create_index("click_windows_window_start", "click_windows", ["window_start"])
    op.create_table(
        "clicks",
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("click_count", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("url", name="clicks_pkey"),
    )
    op.create_table(
        "sink_offsets",
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("partition", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("topic", "partition", name="sink_offsets_pkey"),
    )


def downgrade() -> None:
    op.drop_table("sink_offsets")
    op.drop_table("clicks")
    op.drop_index("click_windows_window_start", table_name="click_windows")
    op.drop_table("click_windows")
