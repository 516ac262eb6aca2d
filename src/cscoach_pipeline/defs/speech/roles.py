"""Which speaker (mono) or channel (stereo) is the agent, decided from what they say.

Evidence, each counted once per phrase and speaker: an agent greets with the company, offers
help, introduces themselves, asks verification questions and closes the call (English and
Korean 상담원 phrases); a customer states a problem about "my" account or order. On inbound
calls the agent usually speaks first, and the configured channel is a prior. The decision
keeps its confidence; a low one says so in the transcript's metadata."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

AGENT_PHRASES = [
    r"\bthanks? (you )?for (calling|contacting|choosing|holding|your patience)",
    r"\bhow (can|may|could) i (help|assist)",
    r"\bwhat can i (do|help) (for|with)",
    r"\bwelcome to\b",
    r"\bthis is \w+( \w+)? (from|at|with|speaking)\b",
    r"\bmy name is \w+,? (and )?(i('m| am| will)|how)",
    r"\b(can|could|may) i (have|get|take|confirm|verify) your\b",
    r"\bfor (security|verification) (purposes|reasons)\b",
    r"\bverify your (identity|account|date of birth)\b",
    r"\bis there anything else\b",
    r"\b(have|enjoy) a (great|nice|good|wonderful) (day|evening|weekend)\b",
    r"\bplease (hold|bear with me)\b",
    r"\bsorry for the (wait|inconvenience|trouble)\b",
    r"\bi (will|'ll|can) (transfer|escalate|process|refund|credit|issue|arrange)\b",
    r"\bi (have|'ve) (cancelled|processed|refunded|credited|updated|arranged)\b",
    r"\bi understand (your|how|that)\b",
    r"상담원",
    r"무엇을 도와",
    r"도와\s?드릴",
    r"도와\s?드리겠",
    r"확인\s?(해|도와)\s?드리",
    r"본인\s?확인",
    r"성함(이|을|은)",
    r"전화\s?주셔서\s?감사",
    r"문의\s?(해\s?)?주셔서",
    r"잠시만\s?기다려\s?주",
    r"좋은\s?하루\s?(되|보내)",
    r"고객님",
]
CUSTOMER_PHRASES = [
    r"\bi (want|need|would like|'d like) to (cancel|return|complain|change|close|dispute)\b",
    r"\bmy (internet|order|account|bill|card|package|subscription|phone|connection)\b",
    r"\bi (have|'ve) been (charged|waiting|trying|billed)\b",
    r"\b(it|this) (is|was) too expensive\b",
    r"\bi('m| am) calling (about|because)\b",
    r"\bcan you (help|fix|check)\b",
    r"해지하고\s?싶",
    r"환불\s?(받고|해\s?주)",
    r"안\s?돼요",
    r"문의\s?드리",
    r"제\s?(주문|계정|카드|요금)",
]
_AGENT = [re.compile(p, re.IGNORECASE) for p in AGENT_PHRASES]
_CUSTOMER = [re.compile(p, re.IGNORECASE) for p in CUSTOMER_PHRASES]

FIRST_SPEAKER_WEIGHT = 0.75  # inbound calls: the agent answers
PRIOR_WEIGHT = 0.5  # the configured channel, on stereo
LOW_CONFIDENCE = 0.8  # below: only who spoke first, or thin evidence


@dataclass(frozen=True)
class RoleDecision:
    agents: frozenset[int]  # speaker labels (or channels) that are agents
    agent: int | None  # the main agent: the one with the most evidence
    confidence: float  # 0.5 = a coin toss, 1.0 = certain
    evidence: dict[int, float] = field(default_factory=dict)

    @property
    def low_confidence(self) -> bool:
        return self.confidence < LOW_CONFIDENCE


def phrase_evidence(text: str) -> float:
    """Agent phrases minus customer phrases found in one speaker's text."""
    agent = sum(1 for p in _AGENT if p.search(text))
    customer = sum(1 for p in _CUSTOMER if p.search(text))
    return float(agent - customer)


def decide_roles(
    turns: Iterable[tuple[int, str, float]],
    *,
    prior: int | None = None,
    inbound: bool = True,
) -> RoleDecision:
    """`turns`: (speaker, text, start_s). The agent is the speaker with the most evidence;
    with three or more speakers another one whose own evidence is clearly an agent's (a
    transfer) is an agent too."""
    texts: dict[int, list[str]] = defaultdict(list)
    first: tuple[float, int] | None = None  # (start, speaker) of the earliest turn
    for speaker, text, start in turns:
        texts[speaker].append(text)
        if first is None or start < first[0]:
            first = (start, speaker)
    first_speaker = first[1] if first is not None else None
    if prior is not None:
        texts.setdefault(prior, [])
    if not texts:
        return RoleDecision(frozenset(), None, 0.5)
    evidence = {speaker: phrase_evidence(" ".join(parts)) for speaker, parts in texts.items()}
    if inbound and first_speaker is not None and len(texts) > 1:
        evidence[first_speaker] += FIRST_SPEAKER_WEIGHT
    if prior is not None:
        evidence[prior] += PRIOR_WEIGHT
    ranked = sorted(evidence.items(), key=lambda kv: (-kv[1], kv[0]))
    agent = ranked[0][0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    margin = ranked[0][1] - runner_up
    # A logistic of the margin: one agent phrase more than the other side -> ~0.82.
    confidence = 1.0 / (1.0 + math.exp(-1.5 * margin)) if len(ranked) > 1 else 0.5
    agents = {agent}
    if len(ranked) > 2:
        own = {s: e - (FIRST_SPEAKER_WEIGHT if s == first_speaker else 0.0) for s, e in ranked}
        agents |= {s for s, _ in ranked[1:] if own[s] >= 2}
    return RoleDecision(
        frozenset(agents), agent, round(confidence, 3), {s: round(e, 2) for s, e in ranked}
    )
