-- How often each call category fires, over the consultations scored with the newest
-- categories version and prompt version of each consultation.
SELECT m.category_id, m.severity, COUNT(*) AS consultations,
       ROUND(100.0 * COUNT(*) / (SELECT COUNT(*) FROM latest_quality_metrics), 1)
         AS percent_of_consultations
FROM category_matches m
JOIN latest_quality_metrics q
  ON q.consultation_id = m.consultation_id AND q.prompt_version = m.prompt_version
GROUP BY m.category_id, m.severity
ORDER BY consultations DESC
