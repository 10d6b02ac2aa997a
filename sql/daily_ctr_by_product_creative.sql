-- Daily impressions, clicks and CTR per product and creative.
-- param start_date: first event_date to include (YYYY-MM-DD)
-- param end_date: last event_date to include (YYYY-MM-DD)
SELECT
  i.event_date,
  i.product_id,
  i.creative_id,
  c.background_prompt,
  COUNT(*) AS impressions,
  CAST(SUM(i.clicked) AS BIGINT) AS clicks,
  CAST(SUM(i.clicked) AS DOUBLE) / COUNT(*) AS ctr
FROM impressions i
LEFT JOIN creatives c ON c.creative_id = i.creative_id
WHERE i.event_date BETWEEN CAST(:start_date AS DATE) AND CAST(:end_date AS DATE)
GROUP BY i.event_date, i.product_id, i.creative_id, c.background_prompt
ORDER BY i.event_date, i.product_id, i.creative_id
