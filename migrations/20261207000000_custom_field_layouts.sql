-- Custom fields stored sparsely. Real records list every defined custom field on every device,
-- nearly all of them unset (value null, notes ""), in the same order: 2.8 million rows for
-- 100 000 devices, of which about 5% say anything. Now each distinct list of keys is stored
-- once (`custom_field_layout_keys`), each device names its list (`device_custom_field_layouts`),
-- and only the entries that differ from an unset field are rows
-- (`device_custom_field_entries`). `device_custom_fields` becomes a view with the same columns
-- and the same rows: one per entry as sent.

-- A first load that an older version left behind when killed: its rows were never applied.
DROP TABLE IF EXISTS pull_load_device_custom_fields;

-- Each distinct list of custom-field keys a record sent, as (position, key) rows.
CREATE TABLE custom_field_layout_keys (
    layout_id INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    key       TEXT    NOT NULL,
    PRIMARY KEY (layout_id, seq)
) WITHOUT ROWID;

-- The list of keys of each device that sends custom fields.
CREATE TABLE device_custom_field_layouts (
    device_id INTEGER PRIMARY KEY,
    layout_id INTEGER NOT NULL
);

-- The entries that are not unset: a value, or notes other than "".
CREATE TABLE device_custom_field_entries (
    device_id INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    key       TEXT    NOT NULL,
    value     TEXT,
    notes     TEXT,
    PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;

-- Each device's list of keys, in order, as the JSON text that identifies a list here only.
CREATE TEMP TABLE migrate_key_lists AS
SELECT device_id, json_group_array(json_array(seq, key) ORDER BY seq) AS keys
FROM device_custom_fields GROUP BY device_id;

-- Each distinct list once, numbered in the order of the first device that sends it.
CREATE TEMP TABLE migrate_layouts (layout_id INTEGER PRIMARY KEY, keys TEXT NOT NULL UNIQUE);
INSERT OR IGNORE INTO migrate_layouts (keys) SELECT keys FROM migrate_key_lists ORDER BY device_id;

INSERT INTO custom_field_layout_keys (layout_id, seq, key)
SELECT l.layout_id, e.value ->> 0, e.value ->> 1 FROM migrate_layouts l, json_each(l.keys) e;

INSERT INTO device_custom_field_layouts (device_id, layout_id)
SELECT k.device_id, l.layout_id FROM migrate_key_lists k JOIN migrate_layouts l USING (keys);

INSERT INTO device_custom_field_entries (device_id, seq, key, value, notes)
SELECT device_id, seq, key, value, notes FROM device_custom_fields
WHERE NOT (value IS NULL AND notes IS '');

DROP TABLE migrate_key_lists;
DROP TABLE migrate_layouts;
DROP TABLE device_custom_fields;

-- The index keeps its name: a query on a key's value reads set entries only.
CREATE INDEX device_custom_fields_by_value ON device_custom_field_entries (key, value)
    WHERE value IS NOT NULL;
-- The devices of a list: a query for the devices where a key is unset, and the apply that drops
-- lists no device sends any more.
CREATE INDEX device_custom_field_layouts_by_layout ON device_custom_field_layouts (layout_id);

-- What reports read: every entry as sent. The unset entries come from the device's list of keys,
-- less the positions that have an entry row; their value is NULL, so a query on a value never
-- reads them.
CREATE VIEW device_custom_fields (device_id, seq, key, value, notes) AS
SELECT device_id, seq, key, value, notes FROM device_custom_field_entries
UNION ALL
SELECT d.device_id, k.seq, k.key, NULL, ''
FROM device_custom_field_layouts d JOIN custom_field_layout_keys k ON k.layout_id = d.layout_id
WHERE NOT EXISTS (SELECT 1 FROM device_custom_field_entries e
                  WHERE e.device_id = d.device_id AND e.seq = k.seq);
