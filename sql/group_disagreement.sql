-- How much the groups of one product disagree: how many distinct best creatives its groups have,
-- and the spread of their best creatives' smoothed CTR.
-- param run_date: the grouping run date (YYYY-MM-DD)
SELECT b.product_id,
       COUNT(*) AS n_groups,
       COUNT(DISTINCT b.creative_id) AS distinct_best_creatives,
       MIN(b.smoothed_ctr) AS min_best_ctr,
       MAX(b.smoothed_ctr) AS max_best_ctr,
       MAX(b.smoothed_ctr) - MIN(b.smoothed_ctr) AS spread_best_ctr
FROM (
  SELECT x.product_id, x.group_id, x.creative_id, x.smoothed_ctr,
         ROW_NUMBER() OVER (PARTITION BY x.product_id, x.group_id ORDER BY x.smoothed_ctr DESC, x.creative_id) AS rank
  FROM group_creative_ctr x
  WHERE x.run_date = CAST(:run_date AS DATE)
) b
WHERE b.rank = 1
GROUP BY b.product_id
ORDER BY spread_best_ctr DESC, b.product_id
