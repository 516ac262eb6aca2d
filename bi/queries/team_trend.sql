-- Each team day by day, with rolling means (a line chart per team).
SELECT day, team, agents, consultations, mean_score, rolling_7d_mean_score,
       rolling_28d_mean_score, pass_rate, escalated_rate
FROM team_daily_trends
WHERE scope = 'team'
ORDER BY team, day
