-- How each product's users were assigned on a run date: from the audience (user_groups), by attributes, or no groups.
-- param run_date: the run date (YYYY-MM-DD)
SELECT s.product_id, s.assigned_by, COUNT(*) AS users, COUNT(DISTINCT s.creative_id) AS creatives
FROM serving_assignments s
WHERE s.run_date = CAST(:run_date AS DATE)
GROUP BY s.product_id, s.assigned_by
ORDER BY s.product_id, s.assigned_by
