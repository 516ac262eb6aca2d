-- Agents of the latest day, best mean score first, with volume, pass rate and failures.
SELECT day, agent_id, agent_name, team, consultations, scored, mean_score, pass_rate, failed,
       customer_sentiment_end, llm_cost_usd
FROM agent_daily_scorecards
WHERE day = (SELECT MAX(day) FROM agent_daily_scorecards)
ORDER BY mean_score DESC, consultations DESC
