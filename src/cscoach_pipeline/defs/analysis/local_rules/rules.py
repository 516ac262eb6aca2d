"""The local rules themselves: how cues found in a transcript become a ConsultationAnalysis.

Every phrase and every sentence of wording comes from the phrase book (phrases.py); this
module holds only the logic: which turns are read for which criterion, how cue counts become
scores, and how the outcome, sentiment, intent and summary are decided.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cscoach_pipeline.defs.analysis.local_rules.matching import (
    HANGUL,
    Cue,
    Hit,
    View,
    compact,
    distinct,
    scan,
)
from cscoach_pipeline.defs.analysis.local_rules.phrases import (
    DEFAULT_PHRASE_BOOK,
    Bilingual,
    PhraseBook,
    load_phrase_book,
)
from cscoach_pipeline.defs.analysis.schema import (
    RUBRIC_CRITERIA,
    ConsultationAnalysis,
    CustomerSentiment,
    ImprovementPoint,
    ResolutionStatus,
    RubricScore,
    RubricScores,
    Sentiment,
)
from cscoach_pipeline.defs.scoring.metrics import count_speech_units
from cscoach_pipeline.defs.speech.transcript import Speaker, Transcript

STRENGTH_MIN_SCORE = 4
IMPROVEMENT_MAX_SCORE = 2
MAX_TEXT_CHARS = 200


@dataclass(frozen=True)
class _Context:
    views: tuple[View, ...]
    agent: tuple[View, ...]  # agent turns, or unknown ones when no agent is labelled
    customer: tuple[View, ...]  # customer turns, or unknown ones when none is labelled
    mono: bool
    korean: bool
    book: PhraseBook


@dataclass(frozen=True)
class _Result:
    """One rubric criterion: score, reason, matched cues and the quote that illustrates it."""

    score: int
    reason: str
    cues: tuple[str, ...]
    evidence: str


# --- context -------------------------------------------------------------------------------


def _context(transcript: Transcript, book: PhraseBook) -> _Context:
    words = book.normalizer.words
    views = tuple(
        View(i, s.speaker, s.text, words(s.text), compact(s.text))
        for i, s in enumerate(transcript.segments)
    )
    by_speaker = {sp: tuple(v for v in views if v.speaker is sp) for sp in Speaker}
    unknown = by_speaker[Speaker.UNKNOWN]
    return _Context(
        views=views,
        agent=by_speaker[Speaker.AGENT] or unknown,
        customer=by_speaker[Speaker.CUSTOMER] or unknown,
        mono=bool(unknown) and not by_speaker[Speaker.AGENT] and not by_speaker[Speaker.CUSTOMER],
        korean=_is_korean(transcript, views),
        book=book,
    )


def agent_turns(transcript: Transcript, book: PhraseBook) -> tuple[View, ...]:
    """The agent's turns as the rules match them (unknown turns when no agent is labelled)."""
    return _context(transcript, book).agent


def _is_korean(transcript: Transcript, views: Sequence[View]) -> bool:
    if transcript.language:
        return transcript.language.lower().startswith("ko")
    # No language tag: go by script, Hangul syllables against everything else.
    text = " ".join(v.raw for v in views)
    hangul = len(HANGUL.findall(text))
    return hangul > 0 and hangul >= count_speech_units(text) - hangul


def _head(views: Sequence[View]) -> tuple[View, ...]:
    return tuple(views[: _window(views)])


def _tail(views: Sequence[View]) -> tuple[View, ...]:
    return tuple(views[len(views) - _window(views) :])


def _window(views: Sequence[View]) -> int:
    # Opening/closing window: a third of the turns, at least two.
    return max(2, math.ceil(len(views) / 3))


def _say(ctx: _Context, table: Mapping[str, Bilingual], key: str, cues: Sequence[str] = ()) -> str:
    template = table[key].pick(ctx.korean)
    return template.format(cues=", ".join(f"'{c}'" for c in cues))


def _quote(ctx: _Context, index: int | None) -> str:
    """Verbatim (possibly cut) text of one segment, for evidence_quote."""
    if index is None:
        return ""
    return ctx.views[index].raw.strip()[:MAX_TEXT_CHARS]


# --- rubric --------------------------------------------------------------------------------


def _cue_score(n_cues: int, absent: int) -> int:
    """1 cue -> 3, 2 -> 4, 3+ -> 5; none -> `absent` (0 or 1)."""
    return absent if n_cues == 0 else min(5, n_cues + 2)


def _clamp(score: int) -> int:
    return max(0, min(5, score))


def _windowed(ctx: _Context, key: str, cues: tuple[Cue, ...], window: tuple[View, ...]) -> _Result:
    """Greeting/closing: cues must be in the opening/closing agent turns to count fully."""
    found = distinct(scan(cues, window))
    if found:
        reason = _say(ctx, ctx.book.reason_found, key, found)
        return _Result(_cue_score(len(found), 0), reason, found, "")
    late = distinct(scan(cues, ctx.agent))
    reason = _say(ctx, ctx.book.reason_missing, key)
    if late:
        reason += _say(ctx, ctx.book.reason_extra, "late", late)
    fallback = window[-1 if key == "closing" else 0].index if window else None
    return _Result(1 if late else 0, reason, late, _quote(ctx, fallback))


def _counted(
    ctx: _Context, key: str, cues: tuple[Cue, ...], masks: tuple[Cue, ...] = ()
) -> _Result:
    found = distinct(scan(cues, ctx.agent, masks))
    table = ctx.book.reason_found if found else ctx.book.reason_missing
    return _Result(_cue_score(len(found), 1), _say(ctx, table, key, found), found, "")


def _greeting(ctx: _Context) -> _Result:
    return _windowed(ctx, "greeting", ctx.book.greeting, _head(ctx.agent))


def _closing(ctx: _Context) -> _Result:
    return _windowed(ctx, "closing", ctx.book.closing, _tail(ctx.agent))


def _identification(ctx: _Context) -> _Result:
    return _counted(ctx, "identification", ctx.book.identification)


def _empathy(ctx: _Context) -> _Result:
    result = _counted(ctx, "empathy", ctx.book.empathy)
    if result.score > IMPROVEMENT_MAX_SCORE:
        return result
    # Evidence: what the agent said right after the customer first sounded unhappy.
    upset = [h.index for h in scan(ctx.book.negative, ctx.customer, ctx.book.sentiment_formulae)]
    reply = next((v.index for v in ctx.agent if upset and v.index > min(upset)), None)
    return _Result(result.score, result.reason, result.cues, _quote(ctx, reply))


def _penalized(
    ctx: _Context, base: _Result, extra_key: str, penalty_hits: list[Hit], weight: int
) -> _Result:
    """Lower a cue-based score by `weight` per distinct penalty cue, quoting the first one."""
    penalties = distinct(penalty_hits)
    if not penalties:
        return base
    reason = base.reason + _say(ctx, ctx.book.reason_extra, extra_key, penalties)
    first = min(h.index for h in penalty_hits)
    return _Result(
        _clamp(base.score - weight * len(penalties)), reason, base.cues, _quote(ctx, first)
    )


def _problem_solving(ctx: _Context) -> _Result:
    base = _counted(ctx, "problem_solving", ctx.book.problem_solving, ctx.book.refusal_masks)
    refusals = scan(ctx.book.unresolved, ctx.agent, ctx.book.resolution_benign)
    return _penalized(ctx, base, "refusal", refusals, weight=1)


def _accuracy(ctx: _Context) -> _Result:
    base = _counted(ctx, "accuracy", ctx.book.accuracy)
    return _penalized(ctx, base, "hedge", scan(ctx.book.hedges, ctx.agent), weight=2)


def _professionalism(ctx: _Context) -> _Result:
    book = ctx.book
    if not ctx.agent:  # silence is not politeness
        return _Result(0, _say(ctx, book.reason_extra, "no_agent"), (), "")
    rude_hits = scan(book.rude, ctx.agent, book.rude_excused)
    hold_hits = scan(book.hold, ctx.agent)
    # "hold on" is only curt when the customer is never thanked for waiting.
    unthanked_hold = bool(hold_hits) and not scan(book.hold_thanks, ctx.agent)
    rude = distinct(rude_hits)
    if not rude and not unthanked_hold:
        courtesy = distinct(scan(book.courtesy, ctx.agent))
        table = book.reason_found if courtesy else book.reason_missing
        reason = _say(ctx, table, "professionalism", courtesy)
        return _Result(5 if courtesy else 4, reason, courtesy, "")
    reason = _say(ctx, book.reason_extra, "rude", rude) if rude else ""
    if unthanked_hold:
        reason = (reason + _say(ctx, book.reason_extra, "hold")).strip()
    offending = rude_hits + (hold_hits if unthanked_hold else [])
    score = _clamp(5 - 2 * len(rude) - int(unthanked_hold))
    return _Result(score, reason, rude, _quote(ctx, min(h.index for h in offending)))


_CRITERIA = {
    "greeting": _greeting,
    "identification": _identification,
    "empathy": _empathy,
    "problem_solving": _problem_solving,
    "accuracy": _accuracy,
    "closing": _closing,
    "professionalism": _professionalism,
}


def _evaluate(ctx: _Context) -> dict[str, _Result]:
    results = {name: _CRITERIA[name](ctx) for name in RUBRIC_CRITERIA}
    if not ctx.mono:
        return results
    note = _say(ctx, ctx.book.reason_extra, "mono")
    return {k: _Result(r.score, r.reason + note, r.cues, r.evidence) for k, r in results.items()}


# --- outcome and sentiment -----------------------------------------------------------------


def _resolution(ctx: _Context) -> ResolutionStatus:
    # The agent states the outcome; the customer only counts near the end ("it works now").
    half = len(ctx.views) / 2
    late_customer = {v.index: v for v in ctx.customer if v.index >= half}
    views = sorted(
        {**late_customer, **{v.index: v for v in ctx.agent}}.values(), key=lambda v: v.index
    )
    book = ctx.book
    escalated = len(distinct(scan(book.escalated, ctx.agent)))
    unresolved = len(distinct(scan(book.unresolved, views, book.resolution_benign)))
    resolved = len(distinct(scan(book.resolved, views, book.resolution_benign + book.unresolved)))
    return _decide_status(escalated, unresolved, resolved)


def _decide_status(escalated: int, unresolved: int, resolved: int) -> ResolutionStatus:
    if escalated and escalated >= resolved:
        return ResolutionStatus.ESCALATED
    if resolved and unresolved:
        if resolved >= 2 * unresolved:
            return ResolutionStatus.RESOLVED
        if unresolved >= 2 * resolved:
            return ResolutionStatus.UNRESOLVED
        return ResolutionStatus.PARTIALLY_RESOLVED
    if resolved:
        return ResolutionStatus.RESOLVED
    if unresolved:
        return ResolutionStatus.UNRESOLVED
    return ResolutionStatus.UNKNOWN


def _sentiment(ctx: _Context, views: Sequence[View]) -> Sentiment:
    book = ctx.book
    negative = len(scan(book.negative, views, book.sentiment_formulae))
    # Negative phrases are masked first so "not great" is not also counted as "great".
    positive = len(scan(book.positive, views, book.sentiment_formulae + book.negative))
    if positive > negative:
        return Sentiment.POSITIVE
    if negative > positive:
        return Sentiment.NEGATIVE
    return Sentiment.NEUTRAL


def _customer_sentiment(ctx: _Context) -> CustomerSentiment:
    turns = ctx.customer
    third = max(1, math.ceil(len(turns) / 3))
    return CustomerSentiment(
        start=_sentiment(ctx, turns[:third]), end=_sentiment(ctx, turns[-third:])
    )


# --- intent, issue, summary ----------------------------------------------------------------


def _is_substantive(ctx: _Context, view: View) -> bool:
    rest = " ".join(w for w in view.words.split() if w not in ctx.book.fillers)
    # Korean needs more units: they are syllables, not words.
    return count_speech_units(rest) >= (6 if HANGUL.search(rest) else 3)


def _customer_statements(ctx: _Context) -> list[View]:
    """Substantive customer turns; in mono calls, skip turns that sound like the agent."""
    statements = [v for v in ctx.customer if _is_substantive(ctx, v)]
    if ctx.mono:
        statements = [v for v in statements if not scan(ctx.book.agent_formulae, [v])]
    return statements


def _truncate(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= MAX_TEXT_CHARS:
        return text
    return text[:MAX_TEXT_CHARS].rsplit(" ", 1)[0] + "…"


def _intent_and_issue(ctx: _Context, statements: Sequence[View]) -> tuple[str, str]:
    if not statements:
        return "", ""
    intent = statements[0].raw.strip()
    if count_speech_units(intent) < 8 and len(statements) > 1:
        intent = f"{intent} {statements[1].raw.strip()}"  # a short opener rarely says it all
    issue_view = next((v for v in statements if scan(ctx.book.issue, [v])), statements[0])
    return _truncate(intent), _truncate(issue_view.raw)


def _topic(ctx: _Context, statements: Sequence[View]) -> str | None:
    early = statements[: max(1, len(statements) // 2)]
    counts = [(len(scan(topic.cues, early)), topic.wording) for topic in ctx.book.topics]
    best = max(counts, key=lambda c: c[0], default=None)  # max keeps the first on ties
    if best is None or not best[0]:
        return None
    return best[1].pick(ctx.korean)


def _actions(ctx: _Context) -> list[str]:
    found = [
        action.wording.pick(ctx.korean)
        for action in ctx.book.actions
        if scan(action.cues, ctx.agent, ctx.book.refusal_masks)
    ]
    return found[:3]


def _summary(ctx: _Context, intent: str, topic: str | None, status: ResolutionStatus) -> str:
    actions = _actions(ctx)
    outcome = ctx.book.status_sentences[status].pick(ctx.korean)
    if ctx.korean:
        about = topic or (f"'{_short(intent)}'" if intent else "확인되지 않은 용건")
        done = ", ".join(actions) if actions else "확인된 구체적 조치 없음"
        return f"고객이 {about} 건으로 문의했습니다. 상담원 조치: {done}. {outcome}"
    about = topic or (f'"{_short(intent)}"' if intent else "an unidentified request")
    done = _join_en(actions) if actions else "took no clear action"
    return f"Customer called about {about}; the agent {done}. {outcome}"


def _short(text: str, words: int = 12) -> str:
    parts = text.split()
    return " ".join(parts[:words]) + ("…" if len(parts) > words else "")


def _join_en(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# --- feedback ------------------------------------------------------------------------------


def _strengths(ctx: _Context, results: dict[str, _Result]) -> list[str]:
    out = []
    for name in RUBRIC_CRITERIA:
        result = results[name]
        if result.score >= STRENGTH_MIN_SCORE:
            label = ctx.book.criterion_names[name].pick(ctx.korean)
            cues = ", ".join(f"'{c}'" for c in result.cues)
            out.append(f"{label} ({result.score}/5)" + (f": {cues}" if cues else ""))
    return out


def _improvements(ctx: _Context, results: dict[str, _Result]) -> list[ImprovementPoint]:
    return [
        ImprovementPoint(
            point=f"{ctx.book.improvement_points[name].pick(ctx.korean)} {results[name].reason}",
            evidence_quote=results[name].evidence,
        )
        for name in RUBRIC_CRITERIA
        if results[name].score <= IMPROVEMENT_MAX_SCORE
    ]


def _tips(ctx: _Context, results: dict[str, _Result]) -> list[str]:
    tips = []
    for name in RUBRIC_CRITERIA:
        result = results[name]
        if result.score > IMPROVEMENT_MAX_SCORE:
            continue
        listed = ", ".join(f"'{c}'" for c in result.cues)
        cues = f" ({listed})" if name == "professionalism" and listed else ""
        tips.append(ctx.book.coaching_tips[name].pick(ctx.korean).format(cues=cues))
    return tips


# --- entry point ---------------------------------------------------------------------------


def analyze_locally(
    transcript: Transcript, *, phrase_book: str | PhraseBook = DEFAULT_PHRASE_BOOK
) -> ConsultationAnalysis:
    """Score a (PII-redacted) consultation with phrase rules; deterministic and offline.

    `phrase_book` is a shipped version ("v1") or an already loaded `PhraseBook`."""
    book = load_phrase_book(phrase_book) if isinstance(phrase_book, str) else phrase_book
    ctx = _context(transcript, book)
    results = _evaluate(ctx)
    status = _resolution(ctx)
    statements = _customer_statements(ctx)
    intent, issue = _intent_and_issue(ctx, statements)
    return ConsultationAnalysis(
        summary=_summary(ctx, intent, _topic(ctx, statements), status),
        customer_intent=intent,
        issue=issue,
        resolution_status=status,
        customer_sentiment=_customer_sentiment(ctx),
        agent_strengths=_strengths(ctx, results),
        improvement_points=_improvements(ctx, results),
        coaching_tips=_tips(ctx, results),
        rubric=RubricScores(
            **{name: RubricScore(score=r.score, reason=r.reason) for name, r in results.items()}
        ),
    )
