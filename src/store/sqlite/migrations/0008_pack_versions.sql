-- Version 8: who and which rule pack decided what (issue 14).
--
-- A history row records who took the step when a person did (the API
-- token's name; NULL for the engine's own steps) and the version (content
-- hash) of the rule pack of the engine that took it.
ALTER TABLE order_transitions ADD COLUMN actor TEXT;
ALTER TABLE order_transitions ADD COLUMN pack_version TEXT;

-- The rules' decision at ingest, as JSON text: the fired rules' ids, the
-- priority and impact they gave, and the pack version that made it
-- (`{"pack_version", "rules", "priority", "impact"}`; NULL for orders
-- stored before this version or without an evaluation).
ALTER TABLE orders ADD COLUMN decision TEXT;
