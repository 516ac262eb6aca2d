-- How each prompt version and analyzer agrees with the human reviewers, per question and
-- overall: read before switching CSCOACH_PROMPT_VERSION.
SELECT scorecard_version, prompt_version, analyzer, question_id, consultations, pairs,
       exact_agreement, mean_absolute_error, weighted_kappa
FROM scorecard_calibration
WHERE comparison = 'analyzer_vs_reviewer'
ORDER BY scorecard_version, question_id = 'overall' DESC, question_id, prompt_version
