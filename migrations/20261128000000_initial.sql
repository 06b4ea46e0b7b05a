-- The inventory as last pulled: one row per device, the record exactly as Device42 sent it.
-- The typed columns are derived from `raw` when the record is written (v2 and v1 field names are
-- both understood: os_name/os, os_version/osver, hardware/hw_model), so reports can filter on
-- them without parsing JSON; anything else is reachable with json_extract(raw, '$.field').
CREATE TABLE devices (
    device_id     INTEGER PRIMARY KEY,
    raw           TEXT    NOT NULL,
    raw_hash      INTEGER NOT NULL,  -- xxh3-64 of raw: an unchanged record is not rewritten
    first_seen    TEXT    NOT NULL,
    last_changed  TEXT    NOT NULL,
    name          TEXT,
    type          TEXT,
    serial_no     TEXT,
    asset_no      TEXT,
    uuid          TEXT,
    in_service    INTEGER,
    service_level TEXT,
    customer      TEXT,
    hardware      TEXT,
    os_name       TEXT,
    os_version    TEXT,
    last_updated  TEXT
);
CREATE INDEX devices_by_name ON devices (name);
-- Lets a pull compare hashes and ids without reading the (wide) records.
CREATE INDEX devices_by_hash ON devices (device_id, raw_hash);

-- One row per job run.
CREATE TABLE sync_runs (
    id          INTEGER PRIMARY KEY,
    job         TEXT    NOT NULL CHECK (job IN ('pull_devices', 'push_buildings')),
    started_at  TEXT    NOT NULL,
    finished_at TEXT,
    status      TEXT    NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'ok', 'failed', 'held')),
    items       INTEGER NOT NULL DEFAULT 0,
    added       INTEGER NOT NULL DEFAULT 0,
    changed     INTEGER NOT NULL DEFAULT 0,
    removed     INTEGER NOT NULL DEFAULT 0,
    sent        INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0,
    error       TEXT
);
CREATE INDEX sync_runs_by_job ON sync_runs (job, id);

-- One row per device added, changed or removed by a pull, with the record after the change
-- (for `removed`, the last known record).
CREATE TABLE device_changes (
    id        INTEGER PRIMARY KEY,
    run_id    INTEGER NOT NULL REFERENCES sync_runs (id),
    device_id INTEGER NOT NULL,
    change    TEXT    NOT NULL CHECK (change IN ('added', 'changed', 'removed')),
    at        TEXT    NOT NULL,
    raw       TEXT    NOT NULL
);
CREATE INDEX device_changes_by_at ON device_changes (at);
CREATE INDEX device_changes_by_device ON device_changes (device_id, at);
CREATE INDEX device_changes_by_run ON device_changes (run_id);

-- The outbox: other tools insert buildings with plain SQL; the daemon sends them to Device42.
CREATE TABLE building_queue (
    id              INTEGER PRIMARY KEY,
    name            TEXT    NOT NULL,
    address         TEXT,
    contact_name    TEXT,
    contact_phone   TEXT,
    notes           TEXT,
    latitude        TEXT,
    longitude       TEXT,
    groups          TEXT,
    status          TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'done', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT,
    building_id     INTEGER,
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    sent_at         TEXT
);
CREATE INDEX building_queue_due ON building_queue (status, next_attempt_at);
