-- The whole centre day by day: volume, mean score with its 7- and 28-day rolling means,
-- pass rate, failures and LLM cost.
SELECT day, consultations, scored, failed, mean_score, rolling_7d_mean_score,
       rolling_28d_mean_score, pass_rate, rolling_7d_pass_rate, customer_sentiment_end,
       llm_cost_usd
FROM team_daily_trends
WHERE scope = 'centre'
ORDER BY day
