-- Placeholder for the migration 0008 of another branch (issue 14, "reload"):
-- replaced by that file when the branches merge.
SELECT 1;
