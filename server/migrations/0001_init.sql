-- Skybridge schema v1. Times are unix milliseconds (UTC); ids are UUIDv7 text,
-- so ordering by id is ordering by creation time.

CREATE TABLE functions (
    name        TEXT PRIMARY KEY NOT NULL,
    backend     TEXT NOT NULL,
    source      TEXT NOT NULL,   -- JSON SourceInfo
    env         TEXT NOT NULL,   -- JSON object
    limits      TEXT NOT NULL,   -- JSON Limits
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE deployments (
    id               TEXT PRIMARY KEY NOT NULL,
    function         TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    function_version INTEGER NOT NULL,
    status           TEXT NOT NULL,
    artifact_digest  TEXT,
    build_log        TEXT NOT NULL,
    error            TEXT,
    snapshot         TEXT NOT NULL,  -- JSON Function as it was built
    created_at       INTEGER NOT NULL,
    finished_at      INTEGER
);
CREATE INDEX deployments_by_function ON deployments(function, id);

CREATE TABLE artifacts (
    digest        TEXT PRIMARY KEY NOT NULL,
    kind          TEXT NOT NULL,
    path          TEXT NOT NULL,     -- relative to the data dir
    size_bytes    INTEGER NOT NULL,
    source_digest TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE executions (
    id               TEXT PRIMARY KEY NOT NULL,
    function         TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    deployment_id    TEXT NOT NULL,
    backend          TEXT NOT NULL,
    status           TEXT NOT NULL,
    input            TEXT NOT NULL,  -- JSON
    stdout           BLOB NOT NULL,
    stderr           BLOB NOT NULL,
    stdout_truncated INTEGER NOT NULL,
    stderr_truncated INTEGER NOT NULL,
    exit_code        INTEGER,
    reason           TEXT,
    message          TEXT,
    duration_ms      INTEGER,
    callback_url     TEXT,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER
);
CREATE INDEX executions_by_function ON executions(function, id);
CREATE INDEX executions_by_status ON executions(status, id);
