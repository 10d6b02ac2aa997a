-- Impressions, clicks and CTR per product category per day.
-- param start_date: first event_date to include (YYYY-MM-DD)
-- param end_date: last event_date to include (YYYY-MM-DD)
SELECT
  i.event_date,
  p.category,
  COUNT(*) AS impressions,
  CAST(SUM(i.clicked) AS BIGINT) AS clicks,
  CAST(SUM(i.clicked) AS DOUBLE) / COUNT(*) AS ctr,
  COUNT(DISTINCT i.user_id) AS users
FROM impressions i
JOIN products p ON p.product_id = i.product_id
WHERE i.event_date BETWEEN CAST(:start_date AS DATE) AND CAST(:end_date AS DATE)
GROUP BY i.event_date, p.category
ORDER BY i.event_date, p.category
