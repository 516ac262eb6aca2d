-- What to listen to first on the latest day, with why.
SELECT rank, consultation_id, source_key, agent_id, team, overall_score, pass_state, reasons,
       report_location
FROM review_queue
WHERE day = (SELECT MAX(day) FROM review_queue)
ORDER BY rank
