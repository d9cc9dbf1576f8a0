-- Only an operator lifts the kill switch. Hosts that only run workers or
-- producers connect with roles of their own (docs/HOSTS.md): they may
-- change the status (heartbeats, and pulling the kill switch is anyone's
-- right), but an update that lifts a kill, fleet-wide or of one agent, is
-- refused unless the role is the owner of the table, a member of
-- `switchyard_operator`, or a superuser. The database says no, whatever
-- the client: a worker's host running a changed build cannot lift it either.
CREATE OR REPLACE FUNCTION fleet_status_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    old_kill jsonb := COALESCE(NULLIF(OLD.doc, '')::jsonb -> 'kill', '{}'::jsonb);
    new_kill jsonb := COALESCE(NULLIF(NEW.doc, '')::jsonb -> 'kill', '{}'::jsonb);
    lifted boolean;
BEGIN
    lifted := (old_kill ? 'fleet' AND NOT new_kill ? 'fleet')
        OR EXISTS (
            SELECT 1 FROM jsonb_object_keys(COALESCE(old_kill -> 'agents', '{}'::jsonb)) AS k(agent)
            WHERE NOT COALESCE(new_kill -> 'agents', '{}'::jsonb) ? k.agent
        );
    IF NOT lifted THEN
        RETURN NEW;
    END IF;
    IF pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
        RETURN NEW;
    END IF;
    -- Nested: SQL does not promise to test the role's existence first.
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'switchyard_operator') THEN
        IF pg_has_role(current_user, 'switchyard_operator', 'MEMBER') THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'only an operator may lift the kill switch (role % is not a member of switchyard_operator)', current_user
        USING ERRCODE = '42501';
END
$$;

DROP TRIGGER IF EXISTS fleet_status_guard ON fleet_status;
CREATE TRIGGER fleet_status_guard BEFORE UPDATE ON fleet_status
    FOR EACH ROW EXECUTE FUNCTION fleet_status_guard();
