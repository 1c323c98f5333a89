"""SQLAlchemy round-trips rows on both databases every DB test runs on."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa


def test_round_trip_rows(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    meta = sa.MetaData()
    table = sa.Table(
        "probe",
        meta,
        sa.Column("url", sa.Text, primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    meta.create_all(engine)
    at = datetime(2026, 11, 24, 0, 30, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            table.insert(), [{"url": f"https://e.com/{i}", "n": 2**40 + i, "at": at} for i in range(50)]
        )
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.url, table.c.n).order_by(table.c.n)).all()
    engine.dispose()
    assert len(rows) == 50
    assert rows[0] == ("https://e.com/0", 2**40)
    assert rows[-1] == ("https://e.com/49", 2**40 + 49)
