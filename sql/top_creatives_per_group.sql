-- The best creatives of every group of a run date, by smoothed CTR, with the group's description.
-- param run_date: the grouping run date (YYYY-MM-DD)
-- param top_n = 3: creatives per group
SELECT r.product_id, r.group_id, g.size, g.description, r.rank, r.creative_id, c.background_prompt,
       r.impressions, r.clicks, r.smoothed_ctr, r.ctr_lo, r.ctr_hi
FROM (
  SELECT x.*, ROW_NUMBER() OVER (PARTITION BY x.product_id, x.group_id
                                 ORDER BY x.smoothed_ctr DESC, x.creative_id) AS rank
  FROM group_creative_ctr x
  WHERE x.run_date = CAST(:run_date AS DATE)
) r
JOIN groups g ON g.run_date = CAST(:run_date AS DATE) AND g.product_id = r.product_id AND g.group_id = r.group_id
LEFT JOIN creatives c ON c.creative_id = r.creative_id
WHERE r.rank <= CAST(:top_n AS INT)
ORDER BY r.product_id, r.group_id, r.rank
