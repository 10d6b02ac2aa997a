-- Group sizes and group CTR per product over run dates.
-- param start_date: first run_date to include (YYYY-MM-DD)
-- param end_date: last run_date to include (YYYY-MM-DD)
SELECT g.run_date, g.product_id, g.group_id, g.k, g.size,
       CAST(SUM(x.clicks) AS BIGINT) AS clicks,
       CAST(SUM(x.impressions) AS BIGINT) AS impressions,
       CAST(SUM(x.clicks) AS DOUBLE) / SUM(x.impressions) AS ctr
FROM groups g
JOIN group_creative_ctr x ON x.run_date = g.run_date AND x.product_id = g.product_id AND x.group_id = g.group_id
WHERE g.run_date BETWEEN CAST(:start_date AS DATE) AND CAST(:end_date AS DATE)
GROUP BY g.run_date, g.product_id, g.group_id, g.k, g.size
ORDER BY g.run_date, g.product_id, g.group_id
