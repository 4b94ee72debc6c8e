-- The payments service's own database, next to the shop's (which POSTGRES_DB creates).
-- The postgres image runs the files in /docker-entrypoint-initdb.d once, as POSTGRES_USER,
-- and only when it starts on an EMPTY data volume: after changing this file, recreate the
-- volume (`docker compose down --volumes`) or create the database by hand.
CREATE DATABASE payments;
