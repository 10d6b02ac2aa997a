-- Quarantined landing lines per day and reason, next to the lines read that day.
-- param start_date: first event_date to include (YYYY-MM-DD)
-- param end_date: last event_date to include (YYYY-MM-DD)
SELECT
  q.event_date,
  q.reason,
  COUNT(*) AS lines,
  CAST(MAX(a.lines_read) AS BIGINT) AS lines_read_that_day
FROM quarantine q
JOIN (SELECT event_date, CAST(SUM(lines_read) AS BIGINT) AS lines_read FROM ingest_audit GROUP BY event_date) a
  ON a.event_date = q.event_date
WHERE q.event_date BETWEEN CAST(:start_date AS DATE) AND CAST(:end_date AS DATE)
GROUP BY q.event_date, q.reason
ORDER BY q.event_date, lines DESC
