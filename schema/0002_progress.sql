-- 0002_progress.sql — each job's progress history (docs/daemon.md, "Progress history").
-- Samples are the worker's progress lines as lrqd received them, thinned by the rule of
-- daemon/decim.h: within a segment (one per reconstructed block, one per other stage)
-- sample k is kept while k % stride = 0 or it is the segment's newest.

CREATE TABLE progress_sample (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused: the API's `since` cursor
    job_id    INTEGER NOT NULL REFERENCES job (id) ON DELETE CASCADE,
    stage     TEXT    NOT NULL,
    block     INTEGER NOT NULL DEFAULT 0 CHECK (block >= 0),   -- reconstruct: from 1; else 0
    k         INTEGER NOT NULL CHECK (k >= 0),     -- the sample's number in its segment
    t_ms      INTEGER NOT NULL,                    -- when lrqd received it (unix ms)
    iteration INTEGER,
    loss      REAL,
    eta_s     REAL,
    fraction  REAL,
    UNIQUE (job_id, stage, block, k)
);
CREATE INDEX progress_sample_job ON progress_sample (job_id, seq);

-- The decimation state of each segment, written with its samples (so that a restarted
-- lrqd, or the next attempt, goes on thinning where the last one stopped).
CREATE TABLE progress_segment (
    job_id INTEGER NOT NULL REFERENCES job (id) ON DELETE CASCADE,
    stage  TEXT    NOT NULL,
    block  INTEGER NOT NULL,
    seen   INTEGER NOT NULL CHECK (seen >= 0),
    stride INTEGER NOT NULL CHECK (stride >= 1),
    cap    INTEGER NOT NULL CHECK (cap >= 2),
    PRIMARY KEY (job_id, stage, block)
);

-- The worker's "block" events: a finished block's loss before and after (numbered from 1,
-- like progress lines).
CREATE TABLE progress_block (
    job_id     INTEGER NOT NULL REFERENCES job (id) ON DELETE CASCADE,
    block      INTEGER NOT NULL CHECK (block >= 1),
    blocks     INTEGER,
    loss_start REAL,
    loss_end   REAL,
    seconds    REAL,
    t_ms       INTEGER NOT NULL,
    PRIMARY KEY (job_id, block)
);
