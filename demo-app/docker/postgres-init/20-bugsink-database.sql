-- Bugsink's own database (the error tracker, compose service `bugsink`), next to
-- the shop's and the payments service's. Like every file here it runs once, on an EMPTY data
-- volume: on an existing volume create it by hand (`CREATE DATABASE bugsink;`).
CREATE DATABASE bugsink;
