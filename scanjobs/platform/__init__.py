"""Client of the real platform: its HTTP API (api.py) and its read-only database (db.py)."""
