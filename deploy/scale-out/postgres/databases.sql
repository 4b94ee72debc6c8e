-- The scale-out profile's databases on the shared Postgres: the webhook relay's queue (both
-- replicas share it) and the synthetic monitor's run history. Run by the postgres-databases
-- job (deploy/scale-out/compose.yaml) on every `up`: each CREATE runs only when the database
-- is missing (CREATE DATABASE has no IF NOT EXISTS; psql's \gexec runs the generated
-- statement), so an existing volume works too. The services create their own tables.
-- Reference: https://www.postgresql.org/docs/17/app-psql.html (\gexec).
SELECT 'CREATE DATABASE webhook_relay'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'webhook_relay')\gexec
SELECT 'CREATE DATABASE synthetic_monitor'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'synthetic_monitor')\gexec
