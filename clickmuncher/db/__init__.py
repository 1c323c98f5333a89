"""The database contract shared by the sink (writer) and the api (reader): tables, times, engines, the
Alembic migrations."""
