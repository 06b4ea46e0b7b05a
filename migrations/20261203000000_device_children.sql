-- The child tables of `devices`: one row per entry of a record's lists, as sent, so reports join
-- tables instead of unpicking `raw` with json_each. A pull writes them with the record they come
-- from, in the same transaction, and rewrites them only for devices whose record changed; they go
-- with the device. `seq` is the entry's position in its list (json_each's `key`); entries of an
-- unexpected shape are skipped, and lists that are not lists give no rows.
--
-- Value columns hold the entry's member as sent: a string as it is ("" included), a number or a
-- boolean as its JSON text, null or absent as NULL. WITHOUT ROWID keeps each device's rows
-- together under their key, so they are found and replaced by device_id.

-- From `ip_addresses` (v1 records only).
CREATE TABLE device_ips (
    device_id INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    ip        TEXT,
    label     TEXT,
    subnet    TEXT,
    mac       TEXT,     -- the entry's `macaddress`
    type      INTEGER,  -- a JSON integer; NULL otherwise
    PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;
CREATE INDEX device_ips_by_ip ON device_ips (ip);

-- From `mac_addresses` (v1 records only).
CREATE TABLE device_macs (
    device_id INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    mac       TEXT,
    port      TEXT,
    port_name TEXT,
    vlan      TEXT,
    PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;
CREATE INDEX device_macs_by_mac ON device_macs (mac);

-- From `tags` (a list of strings; v1, and v2 with include_cols).
CREATE TABLE device_tags (
    device_id INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    tag       TEXT    NOT NULL,
    PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;
CREATE INDEX device_tags_by_tag ON device_tags (tag);

-- From `custom_fields` (entries {key, value, notes}; v1, and v2 with include_cols). Real records
-- list every defined field, nearly all with a null value: only set values are indexed.
CREATE TABLE device_custom_fields (
    device_id INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    key       TEXT    NOT NULL,
    value     TEXT,
    notes     TEXT,
    PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;
CREATE INDEX device_custom_fields_by_value ON device_custom_fields (key, value)
    WHERE value IS NOT NULL;

-- From `aliases` (a list of strings; v1, and v2 with include_cols).
CREATE TABLE device_aliases (
    device_id INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    alias     TEXT    NOT NULL,
    PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;
CREATE INDEX device_aliases_by_alias ON device_aliases (alias);

-- The children of the devices already stored, derived as a pull derives them. A record that is
-- not valid JSON gives none (the CASE keeps json_each from seeing it).
INSERT INTO device_ips (device_id, seq, ip, label, subnet, mac, type)
SELECT s.device_id, e.key,
       CASE json_type(e.value, '$.ip') WHEN 'null' THEN NULL WHEN 'text' THEN e.value ->> '$.ip' ELSE e.value -> '$.ip' END,
       CASE json_type(e.value, '$.label') WHEN 'null' THEN NULL WHEN 'text' THEN e.value ->> '$.label' ELSE e.value -> '$.label' END,
       CASE json_type(e.value, '$.subnet') WHEN 'null' THEN NULL WHEN 'text' THEN e.value ->> '$.subnet' ELSE e.value -> '$.subnet' END,
       CASE json_type(e.value, '$.macaddress') WHEN 'null' THEN NULL WHEN 'text' THEN e.value ->> '$.macaddress' ELSE e.value -> '$.macaddress' END,
       CASE json_type(e.value, '$.type') WHEN 'integer' THEN e.value ->> '$.type' END
FROM (SELECT device_id, CASE WHEN json_valid(raw) THEN raw -> '$.ip_addresses' END AS list FROM devices) s,
     json_each(s.list) e
WHERE json_type(s.list) = 'array' AND e.type = 'object';

INSERT INTO device_macs (device_id, seq, mac, port, port_name, vlan)
SELECT s.device_id, e.key,
       CASE json_type(e.value, '$.mac') WHEN 'null' THEN NULL WHEN 'text' THEN e.value ->> '$.mac' ELSE e.value -> '$.mac' END,
       CASE json_type(e.value, '$.port') WHEN 'null' THEN NULL WHEN 'text' THEN e.value ->> '$.port' ELSE e.value -> '$.port' END,
       CASE json_type(e.value, '$.port_name') WHEN 'null' THEN NULL WHEN 'text' THEN e.value ->> '$.port_name' ELSE e.value -> '$.port_name' END,
       CASE json_type(e.value, '$.vlan') WHEN 'null' THEN NULL WHEN 'text' THEN e.value ->> '$.vlan' ELSE e.value -> '$.vlan' END
FROM (SELECT device_id, CASE WHEN json_valid(raw) THEN raw -> '$.mac_addresses' END AS list FROM devices) s,
     json_each(s.list) e
WHERE json_type(s.list) = 'array' AND e.type = 'object';

INSERT INTO device_tags (device_id, seq, tag)
SELECT s.device_id, e.key, CASE e.type WHEN 'text' THEN e.value ELSE s.list -> ('$[' || e.key || ']') END
FROM (SELECT device_id, CASE WHEN json_valid(raw) THEN raw -> '$.tags' END AS list FROM devices) s,
     json_each(s.list) e
WHERE json_type(s.list) = 'array' AND e.type IN ('text', 'integer', 'real', 'true', 'false');

INSERT INTO device_custom_fields (device_id, seq, key, value, notes)
SELECT s.device_id, e.key,
       CASE json_type(e.value, '$.key') WHEN 'text' THEN e.value ->> '$.key' ELSE e.value -> '$.key' END,
       CASE json_type(e.value, '$.value') WHEN 'null' THEN NULL WHEN 'text' THEN e.value ->> '$.value' ELSE e.value -> '$.value' END,
       CASE json_type(e.value, '$.notes') WHEN 'null' THEN NULL WHEN 'text' THEN e.value ->> '$.notes' ELSE e.value -> '$.notes' END
FROM (SELECT device_id, CASE WHEN json_valid(raw) THEN raw -> '$.custom_fields' END AS list FROM devices) s,
     json_each(s.list) e
WHERE json_type(s.list) = 'array' AND e.type = 'object'
  AND json_type(e.value, '$.key') IS NOT NULL AND json_type(e.value, '$.key') <> 'null';

INSERT INTO device_aliases (device_id, seq, alias)
SELECT s.device_id, e.key, CASE e.type WHEN 'text' THEN e.value ELSE s.list -> ('$[' || e.key || ']') END
FROM (SELECT device_id, CASE WHEN json_valid(raw) THEN raw -> '$.aliases' END AS list FROM devices) s,
     json_each(s.list) e
WHERE json_type(s.list) = 'array' AND e.type IN ('text', 'integer', 'real', 'true', 'false');
