"""The PostgreSQL store (asyncpg): the same ports as the SQLite store, for a ledger several processes share."""
