"""Read index for the top of any click class: click_windows by (window_start, url, clicks, human_clicks,
bot_clicks, preview_clicks, prefetch_clicks).

r0003's index (window_start, url, clicks, human_clicks) answers the default top (human clicks) and ``cls=all``
from the index alone, but ``/api/top?cls=bot`` (or ``preview``, ``prefetch``) read every row of the range in
the table: 85 ms for a day of 1,000,000 rows against 17 ms for the human top. With every class count in the
index, each top is an index-only scan on PostgreSQL (a covering index on SQLite): 17 ms; the index is about a
third larger. It replaces ``click_windows_start_url_counts``, its prefix. Figures and plans:
docs/benchmarks.md.

Revision ID: r0004
Revises: r0003
"""

from __future__ import annotations

from alembic import op

revision = "r0004"
down_revision: str | None = "r0003"
branch_labels: str | None = None
depends_on: str | None = None

COLUMNS = ["window_start", "url", "clicks", "human_clicks", "bot_clicks", "preview_clicks", "prefetch_clicks"]


def upgrade() -> None:
    op.create_index("click_windows_start_url_classes", "click_windows", COLUMNS)
    op.drop_index("click_windows_start_url_counts", table_name="click_windows")


def downgrade() -> None:
    op.create_index(
        "click_windows_start_url_counts", "click_windows", ["window_start", "url", "clicks", "human_clicks"]
    )
    op.drop_index("click_windows_start_url_classes", table_name="click_windows")
