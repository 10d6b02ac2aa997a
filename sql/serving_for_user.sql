-- What the ad server shows one user on a run date: per product, the group and the creative (image, prompt, models).
-- param run_date: the run date (YYYY-MM-DD)
-- param user_id: the user
SELECT s.product_id, s.group_id, s.assigned_by, s.creative_id, s.image_uri, s.prompt,
       s.gmllm_version, s.grm_version
FROM serving_assignments s
WHERE s.run_date = CAST(:run_date AS DATE) AND s.user_id = :user_id
ORDER BY s.product_id
