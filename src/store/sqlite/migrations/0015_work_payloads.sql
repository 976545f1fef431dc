-- CreatorFlow store on SQLite, schema version 15: shared work payloads
-- (issue 16, streaming bulk ingest). A bulk ingest gives each new order a
-- first work item whose payload is the fired rules' actions (~800 bytes of
-- JSON), the same text for every order the same rules fired on. It now
-- writes each distinct payload once per tenant, here, and the work item
-- names it in `payload_ref` (its own `payload` left 'null'): half the
-- bytes of a history load. Every statement that sets a work item's
-- payload clears `payload_ref`; the claim reads the shared text back.
--
-- `payload_ref` is not declared a foreign key, and has no index: both
-- would cost every loaded item (an index entry among a few hundred
-- insertion points: 8 % of a million-order load, measured), and a text no
-- item names any more is harmless until a bulk insert sweeps it (one scan
-- of `work_queue`, now and then; see `store/sqlite/bulk.rs`). No statement
-- deletes a row another still names.
CREATE TABLE work_payloads (
    id      INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    user_id TEXT    NOT NULL,
    body    TEXT    NOT NULL,  -- JSON
    UNIQUE (user_id, body)
) STRICT;

ALTER TABLE work_queue ADD COLUMN payload_ref INTEGER;
