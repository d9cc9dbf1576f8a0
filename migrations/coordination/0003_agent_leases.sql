-- One process per agent across the fleet (fleet.coordination): the holder
-- of an agent's lease renews `lease_until` (server time) while it runs; a
-- second process for the same agent waits as a hot standby and takes the
-- lease once it lapses. `fencing` grows by one at every takeover, so each
-- holding is told apart; `config_fingerprint` is the holder's configuration,
-- which a standby must share.
CREATE TABLE IF NOT EXISTS agent_leases (
    agent TEXT PRIMARY KEY,
    holder_host TEXT NOT NULL,
    holder_pid INTEGER NOT NULL,
    holder_incarnation TEXT NOT NULL,
    fencing BIGINT NOT NULL DEFAULT 0,
    lease_until TIMESTAMPTZ NOT NULL,
    config_fingerprint TEXT NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
-- Who waits for a lease: shown by `switchyard status`.
CREATE TABLE IF NOT EXISTS agent_standbys (
    agent TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    incarnation TEXT NOT NULL PRIMARY KEY,
    since TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    seen_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
