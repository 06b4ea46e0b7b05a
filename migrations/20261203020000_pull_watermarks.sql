-- Internal to the pull, not for reports: where the next incremental pull of an endpoint starts.
-- One row per `devices.endpoint`, written in the transaction that applies a pull; only the row
-- of the endpoint last applied is kept, so a changed endpoint starts with a full pull.
CREATE TABLE pull_watermarks (
    endpoint    TEXT PRIMARY KEY,   -- devices.endpoint as configured
    view        TEXT NOT NULL,      -- what the records were asked with (the include_cols of a v2 endpoint)
    pulled_from TEXT NOT NULL,      -- when the last applied pull started (UTC, ISO-8601)
    full_from   TEXT NOT NULL       -- when the last applied full pull started
) WITHOUT ROWID;
