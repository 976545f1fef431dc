-- CreatorFlow store on PostgreSQL: the review queue reads an index.
--
-- The orders waiting for a person (`Manual Review`, not terminal) of a
-- tenant, the longest waiting first: `review_queue` reads a range of this
-- partial index and nothing else. Only orders in review are in it, so it
-- stays small and costs other writes nothing.
CREATE INDEX orders_review ON orders (user_id, state_changed_at, id)
    WHERE NOT terminal AND automation_status = 'Manual Review';
