"""Storage: the tables (models.py), engines and sessions (session.py), migrations (Alembic)."""
