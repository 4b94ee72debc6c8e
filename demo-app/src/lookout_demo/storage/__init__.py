"""Storage shared by both services: the SQL database and the cache."""
