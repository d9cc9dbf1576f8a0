-- The database roles of a fleet that spans hosts (docs/HOSTS.md). Run it
-- as a superuser or a role with CREATEROLE, in the fleet's database, once
-- the fleet has started there once (the schema switchyard_coord exists),
-- and again after an upgrade that adds coordination tables:
--
--   psql "$FLEET_DB_URL" -f scripts/coordination-roles.sql
--
-- It makes three group roles (NOLOGIN); each host's login role is made a
-- member of one:
--
--   CREATE ROLE host_b LOGIN PASSWORD '...' IN ROLE switchyard_producer;
--
-- switchyard_producer: queues items (`switchyard send`, `task submit`,
--   `approvals request`) and reads the status. Changes nothing else: no
--   mute, lock, kill or resume, no claim, no agent's state.
-- switchyard_agent: what an agent process on a worker's host needs from the
--   coordination schema (claims, heartbeats, leases, mutes); it may pull
--   the kill switch but never lift it (the guard in
--   migrations/coordination/0004_kill_switch_guard.sql refuses it).
-- switchyard_operator: an agent's rights, and lifting the kill switch.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'switchyard_producer') THEN
        CREATE ROLE switchyard_producer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'switchyard_agent') THEN
        CREATE ROLE switchyard_agent NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'switchyard_operator') THEN
        CREATE ROLE switchyard_operator NOLOGIN;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA switchyard_coord TO switchyard_producer, switchyard_agent;
-- Every role reads which migrations ran: a current schema is left alone.
GRANT SELECT ON switchyard_coord._sqlx_migrations TO switchyard_producer, switchyard_agent;

GRANT SELECT ON switchyard_coord.fleet_status TO switchyard_producer;
GRANT SELECT, INSERT ON switchyard_coord.inbox_items TO switchyard_producer;
GRANT SELECT ON switchyard_coord.agent_leases, switchyard_coord.agent_standbys TO switchyard_producer;

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA switchyard_coord TO switchyard_agent;

GRANT switchyard_agent TO switchyard_operator;
