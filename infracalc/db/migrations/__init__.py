"""Alembic migrations of the INFRACALC database (see :mod:`infracalc.db.migrate`)."""
