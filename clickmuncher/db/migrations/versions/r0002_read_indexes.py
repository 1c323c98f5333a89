"""Index for the api's reads: click_windows by (window_start, url, clicks).

``/api/top`` sums clicks per URL over the windows of a time range; with this index it reads the range from the
index alone (an index-only scan on PostgreSQL, a covering index on SQLite) instead of visiting every row in
the table. It replaces ``click_windows_window_start``, its prefix. ``/api/windows`` (one URL over a range)
is served by the primary key (url, window_start). Figures and plans: docs/benchmarks.md.

Revision ID: r0002
Revises: r0001
"""

from __future__ import annotations

from alembic import op

revision = "r0002"
down_revision: str | None = "r0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("click_windows_start_url_clicks", "click_windows", ["window_start", "url", "clicks"])
    op.drop_index("click_windows_window_start", table_name="click_windows")


def downgrade() -> None:
    op.create_index("click_windows_window_start", "click_windows", ["window_start"])
    op.drop_index("click_windows_start_url_clicks", table_name="click_windows")
