"""The sink's tables (SPEC §7) as SQLAlchemy Core objects; the migrations in ``migrations/`` create them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

click_windows = sa.Table(
    "click_windows",
    metadata,
    sa.Column("url", sa.Text, primary_key=True),
    sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
    sa.Column("clicks", sa.BigInteger, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # SPEC §12 (migration r0003): NULL in windows written before click classes existed
    sa.Column("human_clicks", sa.BigInteger, nullable=True),
    sa.Column("bot_clicks", sa.BigInteger, nullable=True),
    sa.Column("preview_clicks", sa.BigInteger, nullable=True),
    sa.Column("prefetch_clicks", sa.BigInteger, nullable=True),
    sa.Column("uniques", sa.BigInteger, nullable=True),
    sa.Column("hll", sa.LargeBinary, nullable=True),
)

CLASS_COLUMNS = ("human_clicks", "bot_clicks", "preview_clicks", "prefetch_clicks")
"""The per-class counts, in the order of ``clickmuncher.records.CLASSES``."""

clicks = sa.Table(
    "clicks",
    metadata,
    sa.Column("url", sa.Text, primary_key=True),
    sa.Column("click_count", sa.BigInteger, nullable=False),
)

sink_offsets = sa.Table(
    "sink_offsets",
    metadata,
    sa.Column("topic", sa.Text, primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("next_offset", sa.BigInteger, nullable=False),
)
