//! The journal's schema: ordered migrations, applied once each at open.

/// Ordered schema migrations; `PRAGMA user_version` records how many have run.
pub(super) const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE transfers (
    id          TEXT PRIMARY KEY,
    state       TEXT NOT NULL,
    channel     TEXT NOT NULL,
    account     TEXT NOT NULL,
    mount       TEXT NOT NULL,
    name        TEXT NOT NULL,
    size        INTEGER,
    sha256      TEXT,
    protocol    TEXT NOT NULL,
    remote_addr TEXT,
    body_path   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    received_at TEXT,
    updated_at  TEXT NOT NULL,
    attempt     INTEGER NOT NULL DEFAULT 1,
    parent_id   TEXT,
    reason      TEXT
);
CREATE INDEX transfers_by_state ON transfers (state);
CREATE INDEX transfers_by_box ON transfers (account, channel, state, name);
",
    r"
ALTER TABLE transfers ADD COLUMN receipt TEXT;
ALTER TABLE transfers ADD COLUMN not_before TEXT;
ALTER TABLE transfers ADD COLUMN delivery_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE transfers ADD COLUMN claimed_at TEXT;
",
    r"
ALTER TABLE transfers ADD COLUMN overrides TEXT;
",
    // Outbound jobs: progress per job, published packages, and what each package exported.
    r"
CREATE TABLE job_state (
    job         TEXT PRIMARY KEY,
    seq         INTEGER NOT NULL DEFAULT 0,
    watermark   TEXT,
    last_fire   TEXT,
    last_run    TEXT,
    last_result TEXT
);
CREATE TABLE packages (
    id                    TEXT PRIMARY KEY,
    job                   TEXT NOT NULL,
    run_id                TEXT NOT NULL,
    owner                 TEXT NOT NULL,
    path                  TEXT NOT NULL,
    build_path            TEXT NOT NULL,
    state                 TEXT NOT NULL,
    size                  INTEGER NOT NULL,
    sha256                TEXT NOT NULL,
    items                 INTEGER NOT NULL,
    ready_marker          INTEGER NOT NULL,
    delete_after_download INTEGER NOT NULL,
    created_at            TEXT NOT NULL,
    published_at          TEXT,
    expires_at            TEXT,
    collected_at          TEXT,
    collected_by          TEXT,
    removed_at            TEXT,
    removed_why           TEXT,
    watermark             TEXT
);
CREATE INDEX packages_by_path ON packages (owner, path, state);
CREATE INDEX packages_by_job ON packages (job, state);
CREATE TABLE job_items (
    job         TEXT NOT NULL,
    item        TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    package_id  TEXT NOT NULL,
    PRIMARY KEY (job, item, fingerprint)
);
",
    // Source polls: each poll's cursor, and which source item (at which revision) became which
    // transfer, with the item's fields and whether its write-back was done.
    r"
CREATE TABLE source_state (
    poll        TEXT PRIMARY KEY,
    cursor      TEXT,
    polled_at   TEXT,
    last_result TEXT
);
CREATE TABLE source_items (
    poll        TEXT NOT NULL,
    item        TEXT NOT NULL,
    rev         TEXT NOT NULL,
    transfer_id TEXT NOT NULL,
    fields      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    written_back TEXT,
    PRIMARY KEY (poll, item, rev)
);
CREATE INDEX source_items_by_transfer ON source_items (transfer_id);
",
    // Workflow gates: a transfer waiting for a workflow instance (an approval), which the
    // watcher checks until it ends or times out; survives restarts.
    r"
CREATE TABLE workflow_waits (
    transfer_id  TEXT PRIMARY KEY,
    engine       TEXT NOT NULL,
    instance_id  TEXT NOT NULL,
    definition   TEXT NOT NULL,
    business_key TEXT NOT NULL,
    settings     TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    deadline     TEXT NOT NULL,
    next_check   TEXT NOT NULL,
    failures     INTEGER NOT NULL DEFAULT 0,
    state        TEXT NOT NULL,
    outcome      TEXT,
    comment      TEXT,
    variables    TEXT,
    last_error   TEXT,
    ended_at     TEXT
);
CREATE INDEX workflow_waits_open ON workflow_waits (state, next_check);
",
];
