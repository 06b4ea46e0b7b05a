-- Each record stored once: the change rows move into `device_change_log`, where a row holds its own
-- copy of the record only once that record stops being the device's current one (copy-on-write);
-- `device_changes` becomes a view with the old columns and meaning.

-- A first load that an older version left behind when killed: its rows were never applied, and it
-- holds the indexes of `device_changes` under their names, which the new table takes over.
DROP TABLE IF EXISTS pull_load_changes;

-- One row per device added, changed or removed by a pull. `raw` is NULL while the record the row
-- logged is still the device's `devices.raw`, and a copy of it otherwise; a `removed` row always
-- holds the last known record (the device row is gone).
CREATE TABLE device_change_log (
    id        INTEGER PRIMARY KEY,
    run_id    INTEGER NOT NULL REFERENCES sync_runs (id),
    device_id INTEGER NOT NULL,
    change    TEXT    NOT NULL CHECK (change IN ('added', 'changed', 'removed')),
    at        TEXT    NOT NULL,
    raw       TEXT    CHECK (raw IS NOT NULL OR change != 'removed')
);

-- Every row keeps its id and record, except the latest added or changed row of each device whose
-- record is still the current one: that record is read from `devices` from now on.
INSERT INTO device_change_log (id, run_id, device_id, change, at, raw)
SELECT c.id, c.run_id, c.device_id, c.change, c.at,
       CASE WHEN c.id IN (SELECT max(l.id) FROM device_changes l WHERE l.change != 'removed'
                          GROUP BY l.device_id)
             AND c.raw = (SELECT d.raw FROM devices d WHERE d.device_id = c.device_id)
            THEN NULL ELSE c.raw END
FROM device_changes c ORDER BY c.id;

DROP TABLE device_changes;

-- The indexes keep their names.
CREATE INDEX device_changes_by_at ON device_change_log (at);
CREATE INDEX device_changes_by_device ON device_change_log (device_id, at);
CREATE INDEX device_changes_by_run ON device_change_log (run_id);
-- The rows still reading their record from `devices` (at most one per device, most of them in a
-- large inventory): the copy-on-write below finds them without reading a device's history.
CREATE INDEX device_change_log_current ON device_change_log (device_id) WHERE raw IS NULL;

-- What reports read: the change rows as before, each with the record after the change (for
-- `removed`, the last known record).
CREATE VIEW device_changes (id, run_id, device_id, change, at, raw) AS
SELECT c.id, c.run_id, c.device_id, c.change, c.at,
       coalesce(c.raw, (SELECT d.raw FROM devices d WHERE d.device_id = c.device_id))
FROM device_change_log c;

-- Copy-on-write: before a record stops being current (its device's record replaced, the device
-- deleted), whoever writes `devices` (a pull, or a person by hand), the rows that read it from
-- `devices` get their own copy. "devices" is quoted as SQLite writes it after a rename, so that a
-- first load, which renames the table, leaves these definitions as they are.
CREATE TRIGGER devices_keep_replaced_record AFTER UPDATE OF raw, device_id ON "devices"
WHEN OLD.raw IS NOT NEW.raw OR OLD.device_id != NEW.device_id
BEGIN
    UPDATE device_change_log SET raw = OLD.raw WHERE raw IS NULL AND device_id = OLD.device_id;
END;

CREATE TRIGGER devices_keep_removed_record AFTER DELETE ON "devices"
BEGIN
    UPDATE device_change_log SET raw = OLD.raw WHERE raw IS NULL AND device_id = OLD.device_id;
END;
