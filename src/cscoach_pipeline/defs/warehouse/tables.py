"""The BI contract: warehouse tables as SQLAlchemy Core, portable between SQLite and PostgreSQL.

Column comments are the documentation the README's table section mirrors.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from cscoach_pipeline.defs.analysis.schema import RUBRIC_CRITERIA
from cscoach_pipeline.defs.scoring.sentiment import quarter_columns

metadata = MetaData()

consultations = Table(
    "consultations",
    metadata,
    Column("consultation_id", String(200), primary_key=True, comment="Dagster partition key"),
    Column("source_key", Text, nullable=False, comment="object key in the bucket"),
    Column("file_type", String(10), nullable=False, comment="text | audio | video"),
    Column("extension", String(16), comment="lower-case file extension, e.g. .wav"),
    Column("content_sha256", String(64), comment="sha256 of the original object"),
    Column("size_bytes", BigInteger, comment="size of the original object"),
    Column("version", Integer, comment="1 for the first content seen at this key, +1 per change"),
    Column("duration_s", Float, comment="media duration, or last timestamp of timed text"),
    Column("language", String(16), comment="detected language (ISO 639-1)"),
    Column("channels", Integer, comment="audio channels kept for transcription (1 or 2)"),
    Column(
        "speakers_from",
        String(16),
        comment="channels (stereo) | diarization (mono) | text | none (mono, undiarized)",
    ),
    Column("speaker_count", Integer, comment="speakers heard (channels, or diarized voices)"),
    Column(
        "agent_channel_detected",
        Integer,
        comment="the channel (stereo) or diarized speaker (mono) decided to be the agent",
    ),
    Column(
        "speaker_role_confidence",
        Float,
        comment="0.5-1: how sure that decision is (below 0.8: check the roles)",
    ),
    Column("stt_engine", String(40), comment="faster-whisper | openai-whisper | null for text"),
    Column("stt_model", Text, comment="Whisper model name or path"),
    Column("uploaded_at", DateTime(timezone=True), comment="object's modification time"),
    Column("agent_id", Text, comment="from sidecar, object metadata or key pattern"),
    Column("agent_name", Text),
    Column("team", Text),
    Column("channel", Text, comment="contact channel: phone, chat, video, email..."),
    Column("customer_id", Text),
    Column("call_direction", Text, comment="inbound | outbound | ..."),
    Column("recorded_at", DateTime(timezone=True), comment="when the conversation happened"),
    Column("context_sources", JSON, comment="field -> sidecar | object_metadata | key_pattern"),
    Column("artifacts_prefix", Text, comment="where derived artifacts of this consultation live"),
    Column("report_location", Text, comment="the coaching report (Markdown) in the bucket"),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

consultation_status = Table(
    "consultation_status",
    metadata,
    Column("consultation_id", String(200), primary_key=True),
    Column("source_key", Text, nullable=False),
    Column(
        "status",
        String(16),
        nullable=False,
        comment="queued | processing | succeeded | failed | no_speech | rejected",
    ),
    Column("stage", String(40), comment="last pipeline step that ran (asset name)"),
    Column("error", Text, comment="readable reason; null on success"),
    Column("run_id", String(64), comment="Dagster run that set this status"),
    Column("attempt", Integer, comment="run attempt for this version (1 = first run)"),
    Column(
        "failure_kind",
        String(16),
        comment="input (the file: never retried) | outage (infrastructure: retried) | "
        "superseded | cancelled",
    ),
    Column("next_attempt_at", DateTime(timezone=True), comment="when an outage is retried"),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

transcript_segments = Table(
    "transcript_segments",
    metadata,
    Column("consultation_id", String(200), primary_key=True),
    Column("segment_index", Integer, primary_key=True),
    Column("start_s", Float, comment="null for untimed chat/text"),
    Column("end_s", Float),
    Column("speaker", String(10), nullable=False, comment="agent | customer | unknown"),
    Column("channel", Integer, comment="audio channel the segment came from"),
    Column("text", Text, nullable=False, comment="PII-redacted text"),
    Column("confidence", Float, comment="0-1, exp(mean token log-prob); null for text"),
    Column("sentiment", Float, comment="-1..1, from the latest scoring of the consultation"),
    Column("sentiment_label", String(10), comment="positive | neutral | negative"),
    Column("sentiment_source", String(10), comment="model (the LLM's) | lexicon (offline)"),
)

analyses = Table(
    "analyses",
    metadata,
    Column("consultation_id", String(200), primary_key=True),
    Column("prompt_version", String(40), primary_key=True),
    Column("prompt_variant", String(40), comment="A/B variant of the prompt version, if any"),
    Column("analyzer", String(40), nullable=False, comment="gemini | local-rules"),
    Column("model", String(80), nullable=False),
    Column("summary", Text, nullable=False),
    Column("customer_intent", Text),
    Column("issue", Text),
    Column("resolution_status", String(24)),
    Column("sentiment_start", String(10)),
    Column("sentiment_end", String(10)),
    Column("result_json", JSON, nullable=False, comment="the full validated analysis"),
    Column("elapsed_s", Float),
    Column("input_tokens", Integer, comment="prompt tokens billed (0 on a cache hit)"),
    Column("output_tokens", Integer),
    Column("cached_tokens", Integer, comment="prompt tokens served from Gemini's cache"),
    Column("cost_usd", Float, comment="from the price table; 0 for local rules and cache hits"),
    Column("requests", Integer, comment="HTTP requests made, retries and repair included"),
    Column("cache_hit", Boolean, comment="reused a stored answer for identical input"),
    Column("repaired", Boolean, comment="valid only after one repair round"),
    Column("fallback_reason", Text, comment="why local rules answered instead of Gemini"),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Answers keyed by everything that determines them, so re-materialising an unchanged
# consultation costs no tokens.
analysis_cache = Table(
    "analysis_cache",
    metadata,
    Column("cache_key", String(64), primary_key=True),
    Column("prompt_version", String(40), nullable=False),
    Column("model", String(80), nullable=False),
    Column("schema_version", String(16), nullable=False),
    Column("analyzer", String(40), nullable=False),
    Column("result_json", JSON, nullable=False),
    Column("input_tokens", Integer),
    Column("output_tokens", Integer),
    Column("cached_tokens", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

RUBRIC_COLUMNS = RUBRIC_CRITERIA

quality_metrics = Table(
    "quality_metrics",
    metadata,
    Column("consultation_id", String(200), primary_key=True),
    Column("prompt_version", String(40), primary_key=True),
    Column("prompt_variant", String(40), comment="A/B variant of the prompt version, if any"),
    Column(
        "overall_score",
        Float,
        nullable=False,
        comment="0-100, the scorecard's weighted score of applicable questions",
    ),
    Column("scorecard_version", String(80), comment="<name>/<version> the score is against"),
    Column("pass_state", String(20), comment="passed | below_pass_mark | failed | not_scored"),
    Column("pass_reason", String(500), comment="why: the pass mark, or the failed critical"),
    Column("rubric_mean", Float, comment="0-100, plain mean of the seven rubric scores"),
    *(Column(f"{name}_score", Integer, comment="rubric 0-5") for name in RUBRIC_COLUMNS),
    Column("duration_s", Float),
    Column("agent_talk_s", Float),
    Column("customer_talk_s", Float),
    Column("unknown_talk_s", Float),
    Column("agent_talk_share", Float),
    Column("customer_talk_share", Float),
    Column("agent_words_per_minute", Float, comment="Korean: syllables per minute"),
    Column("customer_words_per_minute", Float),
    Column("non_talk_s", Float, comment="sum of gaps > 3 s with nobody talking"),
    Column("non_talk_share", Float),
    Column("longest_silence_s", Float),
    Column("interruptions_by_agent", Integer),
    Column("interruptions_by_customer", Integer),
    Column("agent_response_latency_median_s", Float),
    Column("agent_loudness_dbfs", Float, comment="median segment level of the agent, dBFS"),
    Column("customer_loudness_dbfs", Float, comment="median segment level of the customer"),
    Column(
        "raised_voice_count",
        Integer,
        comment="segments 6 dB or more above their speaker's own median level",
    ),
    Column("agent_turns", Integer),
    Column("customer_turns", Integer),
    Column("segment_count", Integer),
    *(
        Column(
            name,
            Float,
            comment="-1..1, mean turn sentiment of the speaker"
            + (f" in quarter {name[-1]} of the call" if name[-2:-1] == "q" else " over the call"),
        )
        for name in quarter_columns()
    ),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

scorecard_answers = Table(
    "scorecard_answers",
    metadata,
    Column("consultation_id", String(200), primary_key=True),
    Column("scorecard_version", String(80), primary_key=True),
    Column("prompt_version", String(40), primary_key=True),
    Column("question_id", String(80), primary_key=True),
    Column("answer", String(40), nullable=False, comment="a choice of the question, or n/a"),
    Column("score", Float, comment="null when N/A"),
    Column("max_score", Float, nullable=False),
    Column("weight", Float, nullable=False),
    Column("na", Boolean, nullable=False),
    Column("critical", Boolean, nullable=False),
    Column("evidence", Text, comment="why the answer: a reason or quote (PII redacted)"),
    Column("start_s", Float, comment="where the evidence starts in the call, if known"),
    Column("answered_by", String(10), comment="model (the LLM's answer) | rules"),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

category_matches = Table(
    "category_matches",
    metadata,
    Column("consultation_id", String(200), primary_key=True),
    Column("category_version", String(40), primary_key=True, comment="categories/<version>"),
    Column("prompt_version", String(40), primary_key=True, comment="of the sentiment used"),
    Column("category_id", String(80), primary_key=True, comment="e.g. cancellation_intent"),
    Column("title", Text, nullable=False),
    Column("severity", String(10), nullable=False, comment="high | medium | low | info"),
    Column("segment_index", Integer, comment="the evidence segment (transcript_segments)"),
    Column("start_s", Float, comment="where the evidence starts in the call, if timed"),
    Column("evidence", Text, nullable=False, comment="quote (PII redacted) or measured fact"),
    Column("hits", Integer, nullable=False, comment="segments, gaps or events that matched"),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

qa_reviews = Table(
    "qa_reviews",
    metadata,
    Column("consultation_id", String(200), primary_key=True),
    Column("scorecard_version", String(80), primary_key=True),
    Column("reviewer", String(200), primary_key=True, comment="as the review file names them"),
    Column("question_id", String(80), primary_key=True),
    Column("answer", String(40), nullable=False, comment="a choice of the question, or n/a"),
    Column("score", Float, comment="the choice's score; null when N/A"),
    Column("max_score", Float, nullable=False),
    Column("na", Boolean, nullable=False),
    Column("comment", Text, comment="the reviewer's comment, PII redacted"),
    Column("review_file", Text, nullable=False, comment="object key of the file under reviews/"),
    Column("row_number", Integer, nullable=False, comment="row in that file (header = 1)"),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
)

review_errors = Table(
    "review_errors",
    metadata,
    Column("review_file", String(1024), primary_key=True),
    Column("row_number", Integer, primary_key=True, comment="0: the whole file"),
    Column("reason", Text, nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
)

scorecard_calibration = Table(
    "scorecard_calibration",
    metadata,
    Column("scorecard_version", String(80), primary_key=True),
    Column("prompt_version", String(40), primary_key=True, comment="empty for reviewer pairs"),
    Column("analyzer", String(40), primary_key=True, comment="gemini | local-rules | human"),
    Column("question_id", String(80), primary_key=True, comment="a question, or overall"),
    Column(
        "comparison",
        String(24),
        primary_key=True,
        comment="analyzer_vs_reviewer | reviewer_vs_reviewer",
    ),
    Column("consultations", Integer, nullable=False, comment="reviewed consultations"),
    Column("pairs", Integer, nullable=False, comment="answer pairs compared"),
    Column("scored_pairs", Integer, nullable=False, comment="pairs without N/A on either side"),
    Column("exact_agreement", Float, comment="0-1, same answer (N/A included)"),
    Column("mean_absolute_error", Float, comment="0-1, in fractions of the question's maximum"),
    Column("weighted_kappa", Float, comment="quadratic-weighted Cohen's kappa; null: undefined"),
    Column("computed_at", DateTime(timezone=True), nullable=False),
)

# What the daily aggregates select by (a day's consultations; what changed since a look).
Index("ix_consultations_recorded_at", consultations.c.recorded_at)
Index("ix_consultations_uploaded_at", consultations.c.uploaded_at)
Index("ix_quality_metrics_created_at", quality_metrics.c.created_at)
Index("ix_consultation_status_updated_at", consultation_status.c.updated_at)


# Supervisor aggregates, one row set per day partition (the day of the consultation's
# recorded_at, else its upload, in CSCOACH_TIMEZONE), replaced per day in one transaction.
def _aggregate_columns() -> list[Column]:
    return [
        Column("consultations", Integer, nullable=False, comment="all of the day's"),
        Column("scored", Integer, nullable=False, comment="with a quality score"),
        Column("failed", Integer, nullable=False, comment="status failed"),
        Column("mean_score", Float, comment="0-100, mean overall_score of the scored"),
        Column("median_score", Float),
        Column("pass_rate", Float, comment="0-1, share of the scored that passed"),
        Column("question_scores", JSON, comment="question_id -> mean 0-100 (N/A left out)"),
        Column("mean_agent_talk_share", Float),
        Column("mean_agent_words_per_minute", Float, comment="pace; Korean: syllables"),
        Column("mean_non_talk_share", Float),
        Column("interruptions_by_agent", Integer, comment="sum"),
        Column("mean_response_latency_s", Float),
        Column("mean_handle_time_s", Float, comment="mean duration_s"),
        Column("customer_sentiment_start", Float, comment="-1..1, mean of the first quarter"),
        Column("customer_sentiment_end", Float, comment="-1..1, mean of the last quarter"),
        Column("resolved_rate", Float, comment="0-1 of the scored"),
        Column("escalated_rate", Float),
        Column("unresolved_rate", Float),
        Column("llm_cost_usd", Float, comment="every analysis of the day's consultations"),
        Column("computed_at", DateTime(timezone=True), nullable=False),
    ]


agent_daily_scorecards = Table(
    "agent_daily_scorecards",
    metadata,
    Column("day", Date, primary_key=True),
    Column("agent_id", String(200), primary_key=True, comment="'unassigned' when unknown"),
    Column("agent_name", Text),
    Column("team", Text, comment="the agent's team that day ('' when unknown)"),
    *_aggregate_columns(),
)

team_daily_trends = Table(
    "team_daily_trends",
    metadata,
    Column("day", Date, primary_key=True),
    Column("scope", String(10), primary_key=True, comment="team | centre"),
    Column("team", String(200), primary_key=True, comment="'' for the centre, unassigned"),
    Column("agents", Integer, nullable=False, comment="distinct agents that day"),
    *_aggregate_columns(),
    Column("rolling_7d_mean_score", Float, comment="mean score of the 7 days to this one"),
    Column("rolling_28d_mean_score", Float),
    Column("rolling_7d_pass_rate", Float),
    Column("rolling_28d_pass_rate", Float),
    Column("rolling_7d_consultations", Integer),
    Column("rolling_28d_consultations", Integer),
)

review_queue = Table(
    "review_queue",
    metadata,
    Column("day", Date, primary_key=True),
    Column("consultation_id", String(200), primary_key=True),
    Column("rank", Integer, nullable=False, comment="1 = listen to first"),
    Column("priority", Float, nullable=False, comment="higher first; the reasons' weights"),
    Column("reasons", Text, nullable=False, comment="why, most important first"),
    Column("failed_critical", Boolean, nullable=False),
    Column("overall_score", Float),
    Column("pass_state", String(20)),
    Column("customer_sentiment_end", Float),
    Column("categories", Text, comment="high-severity categories that fired"),
    Column("agent_id", Text),
    Column("team", Text),
    Column("source_key", Text, comment="as tables show it (PII in the name redacted)"),
    Column("report_location", Text),
    Column("computed_at", DateTime(timezone=True), nullable=False),
)


# Internal: the review files loaded, by their listing token, so an unchanged file is not
# read again.
review_files = Table(
    "review_files",
    metadata,
    Column("review_file", String(1024), primary_key=True),
    Column("version_token", String(200), nullable=False),
    Column("rows_loaded", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
)


# Internal (not part of the BI contract): what the sensor has seen in the bucket, so a tick
# never re-hashes unchanged objects and a changed object becomes a new version.
bucket_objects = Table(
    "bucket_objects",
    metadata,
    Column("source_key", String(1024), primary_key=True),
    Column("consultation_id", String(200), nullable=False),
    Column("version_token", String(200), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("fingerprint", String(200), comment="content identity: store ETag or sha256"),
    Column("version", Integer, nullable=False),
    Column("state", String(16), nullable=False, comment="active | rejected | deleted"),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


# Internal: consultations whose Dagster partition the retention sensor removed from the
# instance (CSCOACH_PARTITION_RETENTION_DAYS) and when one was registered again for a
# reanalysis. Every table row and artifact of a retired consultation stays.
partition_retention = Table(
    "partition_retention",
    metadata,
    Column("consultation_id", String(200), primary_key=True),
    Column("retired_at", DateTime(timezone=True), comment="partition removed from Dagster"),
    Column("restored_at", DateTime(timezone=True), comment="partition registered again"),
)


# Internal: sensor state that must not sit in a Dagster cursor (it is stored with every tick),
# e.g. the object key an unfinished listing resumes after.
sensor_state = Table(
    "sensor_state",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("value", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Health of the services the pipeline depends on, as transitions (a row only when the state
# changes): the LLM's circuit breaker (open / closed) and the bucket (unreachable / reachable).
# The alert sensor reads the latest state per service.
service_health = Table(
    "service_health",
    metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("service", String(200), nullable=False, comment="llm:<analyzer>:<model> | bucket"),
    Column("state", String(20), nullable=False, comment="open | closed | unreachable | reachable"),
    Column("detail", Text, comment="why (error class and readable reason; no PII)"),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Index("ix_service_health_service", "service", "event_id"),
)

# Alerts on their way to each channel (an outbox): written before they are sent, marked sent
# when the channel accepted them, so a channel that is down gets them later and none twice.
# Holds no personal data: ids as tables show them, stages, reasons with PII redacted.
alert_outbox = Table(
    "alert_outbox",
    metadata,
    Column("alert_id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(20), nullable=False, comment="slack | teams | webhook"),
    Column(
        "kind",
        String(40),
        nullable=False,
        comment="consultation_failed | llm_outage | llm_recovered | bucket_unreachable | "
        "bucket_reachable | critical_review",
    ),
    Column("dedup_key", String(400), nullable=False, comment="one alert per event and channel"),
    Column("payload", JSON, nullable=False, comment="the item the message is made of"),
    Column("status", String(10), nullable=False, comment="pending | sent | failed"),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, comment="the channel's answer (no URL: it holds the secret)"),
    Column("last_attempt_at", DateTime(timezone=True), comment="retries back off from it"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Index("ux_alert_outbox_dedup", "channel", "dedup_key", unique=True),
    Index("ix_alert_outbox_pending", "channel", "status"),
)

# Views for BI: history stays in the tables (one row per consultation and prompt version);
# these give the latest answer per consultation and score shifts between prompt versions.
_CRITERIA_UNION = "\nUNION ALL\n".join(
    [
        "SELECT consultation_id, prompt_version, 'overall' AS criterion, "
        "CAST(overall_score AS FLOAT) AS score, created_at FROM quality_metrics"
    ]
    + [
        f"SELECT consultation_id, prompt_version, '{name}' AS criterion, "
        f"CAST({name}_score AS FLOAT) AS score, created_at FROM quality_metrics"
        for name in RUBRIC_CRITERIA
    ]
)

VIEWS: dict[str, str] = {
    "latest_analyses": """
        SELECT a.* FROM analyses a
        WHERE a.created_at = (
            SELECT MAX(b.created_at) FROM analyses b WHERE b.consultation_id = a.consultation_id
        )""",
    "latest_quality_metrics": """
        SELECT q.* FROM quality_metrics q
        WHERE q.created_at = (
            SELECT MAX(r.created_at) FROM quality_metrics r
            WHERE r.consultation_id = q.consultation_id
        )""",
    "rubric_scores_by_version": _CRITERIA_UNION,
    "rubric_shifts": """
        SELECT f.consultation_id, f.criterion,
               f.prompt_version AS from_version, t.prompt_version AS to_version,
               f.score AS from_score, t.score AS to_score, t.score - f.score AS shift
        FROM rubric_scores_by_version f
        JOIN rubric_scores_by_version t
          ON f.consultation_id = t.consultation_id
         AND f.criterion = t.criterion
         AND f.created_at < t.created_at""",
}
