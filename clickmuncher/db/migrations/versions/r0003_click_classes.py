"""Click classes and unique visitors (SPEC §12): per-class counts, uniques and the sketch per window.

``human_clicks``, ``bot_clicks``, ``preview_clicks``, ``prefetch_clicks``, ``uniques`` and ``hll`` (the
HyperLogLog sketch, compact bytes) are NULL for windows written before classes existed: their classes are
unknown (the api reads their clicks as human, as the streams worker reads clicks without a class). The read
index gains the human count, so the default top (human clicks) is still answered from the index alone.

Revision ID: r0003
Revises: r0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0003"
down_revision: str | None = "r0002"
branch_labels: str | None = None
depends_on: str | None = None

COUNTS = ("human_clicks", "bot_clicks", "preview_clicks", "prefetch_clicks", "uniques")


def upgrade() -> None:
    with op.batch_alter_table("click_windows") as table:
        for name in COUNTS:
            table.add_column(sa.Column(name, sa.BigInteger, nullable=True))
        table.add_column(sa.Column("hll", sa.LargeBinary, nullable=True))
    op.create_index(
        "click_windows_start_url_counts", "click_windows", ["window_start", "url", "clicks", "human_clicks"]
    )
    op.drop_index("click_windows_start_url_clicks", table_name="click_windows")


def downgrade() -> None:
    op.create_index("click_windows_start_url_clicks", "click_windows", ["window_start", "url", "clicks"])
    op.drop_index("click_windows_start_url_counts", table_name="click_windows")
    with op.batch_alter_table("click_windows") as table:
        for name in (*COUNTS, "hll"):
            table.drop_column(name)
