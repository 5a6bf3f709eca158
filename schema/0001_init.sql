-- 0001_init.sql — the job queue. Applied by daemon/db.c inside BEGIN IMMEDIATE;
-- the daemon then sets PRAGMA user_version = 1 in the same transaction.
-- Timestamps are unix milliseconds (UTC); the API renders them as RFC 3339.

CREATE TABLE job (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused, so ids order by age
    name             TEXT,
    owner            TEXT,                -- token name that submitted it (NULL without auth)
    state            TEXT    NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    method           TEXT    NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0 CHECK (priority BETWEEN -100 AND 100),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    spec             TEXT    NOT NULL CHECK (json_valid(spec)),   -- with resolved absolute paths
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,             -- first claim
    finished_at      INTEGER,             -- terminal state reached
    progress         TEXT    CHECK (progress IS NULL OR json_valid(progress)),
    error            TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    worker_pid       INTEGER,             -- while running: the local worker's pid (start-up recovery)
    run_ms           INTEGER NOT NULL DEFAULT 0   -- summed wall time of all attempts
);

-- The claim query: WHERE state='queued' ORDER BY priority DESC, id.
CREATE INDEX job_claim ON job (state, priority DESC, id);

CREATE TABLE artifact (
    job_id INTEGER NOT NULL REFERENCES job (id) ON DELETE CASCADE,
    path   TEXT    NOT NULL,              -- relative to the job's artifacts/ dir
    size   INTEGER NOT NULL CHECK (size >= 0),
    sha256 TEXT    NOT NULL CHECK (length(sha256) = 64),
    PRIMARY KEY (job_id, path)
);

CREATE TABLE job_metrics (
    job_id INTEGER PRIMARY KEY REFERENCES job (id) ON DELETE CASCADE,
    body   TEXT NOT NULL CHECK (json_valid(body))   -- the worker's metrics.json
);
