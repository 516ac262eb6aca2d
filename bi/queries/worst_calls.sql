-- The 20 lowest-scored consultations (each with its newest score), with who handled them,
-- why they passed or failed, and where the coaching report is.
SELECT q.consultation_id, c.source_key, c.agent_id, c.team, c.recorded_at, q.overall_score,
       q.pass_state, q.pass_reason, q.customer_sentiment_q4, c.report_location
FROM latest_quality_metrics q
JOIN consultations c ON c.consultation_id = q.consultation_id
ORDER BY q.overall_score ASC, q.consultation_id
LIMIT 20
