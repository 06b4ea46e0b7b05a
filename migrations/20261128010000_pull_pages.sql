-- Internal to the pull, not for reports: how each page of the last applied pull looked, so that a
-- page that comes back byte for byte the same is neither parsed nor compared again.
CREATE TABLE pull_pages (
    page_offset INTEGER NOT NULL,
    page_limit  INTEGER NOT NULL,   -- the limit asked
    body_hash   BLOB    NOT NULL,   -- xxh3-128 of the response body
    total_count INTEGER,            -- as the body gave them
    limit_echo  INTEGER,
    ids         TEXT    NOT NULL,   -- JSON array of the page's device ids, in page order
    PRIMARY KEY (page_offset, page_limit)
) WITHOUT ROWID;

-- What `devices` held when pull_pages was written (a count and a sum of the record hashes); the
-- pages are trusted only while `devices` still matches, so an edit made outside d42sync is not
-- hidden by them.
CREATE TABLE pull_pages_basis (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    devices  INTEGER NOT NULL,
    checksum INTEGER NOT NULL
);
