"""Offline consultation analyzer built from phrase rules and lexicons (English and Korean).

`analyze_locally` produces the same `ConsultationAnalysis` as the LLM analyzers, without any
network or model, so the pipeline can score calls when no LLM is configured or allowed. It is
deliberately simple and explainable: every rubric score names the phrases it matched.

Phrase syntax used by the tables below:
- Latin phrases match whole words of normalized text (lowercase, contractions expanded, so
  "I'm", "Im" and "I am" are the same; punctuation dropped). A trailing "*" makes a word a
  stem ("refund*" matches "refunds"), and a separate "…" allows up to three words in between.
- Phrases containing Hangul match the text with all spaces and punctuation removed, because
  Korean spacing from STT (and from people) is unreliable; "…" allows up to ten characters.
Within one table longer phrases are tried first and their matches are masked, so
"just to confirm" is not also counted as "to confirm".
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

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

# --- phrase tables -------------------------------------------------------------------------

GREETING_PHRASES: tuple[str, ...] = (
    "thank you for calling",
    "thanks for calling",
    "hello",
    "hi there",
    "good morning",
    "good afternoon",
    "good evening",
    "welcome to",
    "my name is",
    "this is … speaking",
    "how can i help",
    "how may i help",
    "how can i assist",
    "how may i assist",
    "what can i do for you",
    "안녕하세요",
    "감사합니다",
    "전화 주셔서 감사합니다",
    "무엇을 도와드릴까요",
    "도와드릴까요",
    "상담원…입니다",
    "고객센터입니다",
    "반갑습니다",
)
IDENTIFICATION_PHRASES: tuple[str, ...] = (
    "verif*",
    "may i have your … name",
    "can i have your … name",
    "could i have your … name",
    "your full name",
    "date of birth",
    "account number",
    "last four digits",
    "security question",
    "confirm your identity",
    "postcode",
    "zip code",
    "본인 확인",
    "성함",
    "생년월일",
    "주민등록번호",
    "계좌번호",
    "카드 번호",
    "휴대폰 번호",
    "등록된 번호",
    "인증번호",
)
EMPATHY_PHRASES: tuple[str, ...] = (
    "i understand",
    "i completely understand",
    "i can understand",
    "i am sorry to hear",
    "sorry to hear",
    "i apologize",
    "i apologise",
    "we apologize",
    "my apologies",
    "sorry for the inconvenience",
    "sorry about that",
    "i am so sorry",
    "i am really sorry",
    "that must be frustrating",
    "must be frustrating",
    "i can imagine",
    "i can see why",
    "불편을 드려 죄송합니다",
    "죄송합니다",
    "이해합니다",
    "충분히 이해",
    "속상하셨겠어요",
    "답답하셨겠어요",
    "놀라셨겠어요",
    "걱정되셨겠어요",
    "불편하셨겠어요",
    "번거롭게 해 드려",
)
PROBLEM_SOLVING_PHRASES: tuple[str, ...] = (
    "let me check",
    "let me look",
    "let me see what i can do",
    "i have processed",
    "i will process",
    "i will send",
    "i have sent",
    "i have reset",
    "i have updated",
    "i have blocked",
    "i have cancelled",
    "i have canceled",
    "i have issued",
    "i have arranged",
    "i have ordered",
    "refund*",
    "replacement",
    "확인해 보겠습니다",
    "확인해 드리겠습니다",
    "확인해 드릴게요",
    "처리해 드렸습니다",
    "처리해 드리겠습니다",
    "재발급",
    "환불",
    "정지해 드렸",
    "발송해 드리",
    "변경해 드렸",
    "접수해 드렸",
    "조치해 드리",
)
# Refusals that contain an action word: masked so "refunds are not possible" is no action.
REFUSAL_MASKS: tuple[str, ...] = (
    "no refund*",
    "cannot … refund*",
    "not … refund*",
    "refund* … not possible",
    "no replacement",
    "replacement … not possible",
    "환불…어렵",
    "환불…불가",
    "환불…안 됩",
    "재발급…어렵",
    "재발급…불가",
)
ACCURACY_PHRASES: tuple[str, ...] = (
    "to confirm",
    "just to confirm",
    "let me confirm",
    "to recap",
    "to summarize",
    "to summarise",
    "you will receive",
    "you should receive",
    "within … business day*",
    "within … working day*",
    "business day*",
    "reference number",
    "confirmation number",
    "case number",
    "정리해 드리면",
    "정리하면",
    "다시 한번 말씀드리면",
    "영업일",
    "받으실 수 있습니다",
    "접수번호",
)
HEDGE_PHRASES: tuple[str, ...] = (
    "i think maybe",
    "not sure",
    "i do not know",
    "no idea",
    "i guess",
    "잘 모르겠",
    "모르겠습니다",
    "아마도",
    "글쎄요",
)
CLOSING_PHRASES: tuple[str, ...] = (
    "anything else",
    "is there anything else",
    "have a great day",
    "have a good day",
    "have a nice day",
    "have a wonderful day",
    "thank you for your patience",
    "thanks for your patience",
    "thank you for calling",
    "thanks for calling",
    "take care",
    "goodbye",
    "좋은 하루",
    "더 궁금하신",
    "궁금하신 점",
    "다른 문의",
    "감사합니다",
    "이용해 주셔서 감사합니다",
    "전화 주셔서 감사합니다",
    "행복한 하루",
    "안녕히 계세요",
)
RUDE_PHRASES: tuple[str, ...] = (
    "whatever",
    "not my problem",
    "not my job",
    "calm down",
    "you people",
    "i do not care",
    "that's your problem",
    "shut up",
    "stupid",
    "idiot",
    "call back later",
    "deal with it",
    "i already told you",
    "몰라요",
    "그건 제 일이 아니",
    "제 일이 아니",
    "알아서 하세요",
    "짜증",
    "아까 말씀드렸잖아요",
)
# Courteous uses of words that are otherwise rude; masked before RUDE_PHRASES.
RUDE_EXCUSED: tuple[str, ...] = (
    "whatever you need",
    "whatever works",
    "짜증나셨",
    "짜증스러우셨",
)
COURTESY_PHRASES: tuple[str, ...] = (
    "please",
    "thank*",
    "sorry",
    "appreciate*",
    "certainly",
    "of course",
    "my pleasure",
    "happy to help",
    "감사",
    "죄송",
    "부탁",
    "고객님",
)
HOLD_PHRASES: tuple[str, ...] = ("hold on", "hang on")
HOLD_THANKS: tuple[str, ...] = (
    "thank you for holding",
    "thanks for holding",
    "thank you for waiting",
    "thanks for waiting",
    "thank you for your patience",
    "thanks for your patience",
    "기다려 주셔서 감사",
)

RESOLVED_PHRASES: tuple[str, ...] = (
    "has been resolved",
    "is resolved",
    "is fixed",
    "been fixed",
    "processed",
    "you are all set",
    "all set",
    "all sorted",
    "taken care of",
    "working now",
    "works now",
    # Completed agent actions count as resolution too.
    "i have blocked",
    "ordered a replacement",
    "order the replacement",
    "you will receive",
    "i have sent",
    "i have reset",
    "i have updated",
    "i have cancelled",
    "issued a refund",
    "refund has been",
    "해결",
    "처리해 드렸",
    "발송해 드렸",
    "재발급해 드렸",
    "처리되었습니다",
    "처리됐습니다",
    "처리 완료",
    "완료되었습니다",
    "완료됐습니다",
)
UNRESOLVED_PHRASES: tuple[str, ...] = (
    "cannot help",
    "nothing i can do",
    "cannot do anything",
    "call back",
    "not possible",
    "unable to",
    "cannot be processed",
    "still not working",
    "해결되지",
    "해결이 안",
    "해결 안",
    "해결할 수 없",
    "해결이 어렵",
    "어렵습니다",
    "불가능",
    "도와드릴 수 없",
    "방법이 없",
    "아직도 안",
    "여전히 안",
)
ESCALATED_PHRASES: tuple[str, ...] = (
    "escalat*",
    "supervisor",
    "manager",
    "transfer you",
    "transferring you",
    "put you through to",
    "another department",
    "specialist team",
    "담당 부서",
    "이관",
    "상급자",
    "관리자",
    "전문 상담",
    "연결해 드리겠습니다",
)
# Phrases that look like an outcome but are not one (an invitation, a request, a promise).
RESOLUTION_BENIGN: tuple[str, ...] = (
    "feel free to call back",
    "do not hesitate to call back",
    "call back anytime",
    "call back any time",
    "you can always call back",
    "해결해 주",
    "해결 좀",
    "해결해 드리겠",
)

POSITIVE_WORDS: tuple[str, ...] = (
    "thank*",
    "great",
    "perfect",
    "appreciate*",
    "awesome",
    "wonderful",
    "excellent",
    "helpful",
    "glad",
    "relieved",
    "감사",
    "고맙",
    "좋아요",
    "좋네요",
    "다행",
    "친절",
)
NEGATIVE_WORDS: tuple[str, ...] = (
    "angry",
    "frustrat*",
    "ridiculous",
    "terrible",
    "unacceptable",
    "wast*",
    "upset",
    "annoy*",
    "worst",
    "worried",
    "disappoint*",
    "useless",
    "awful",
    "horrible",
    "fed up",
    "not happy",
    "not good",
    "not great",
    "not helpful",
    "thanks for nothing",
    "화가",
    "화나",
    "짜증",
    "불만",
    "답답",
    "걱정",
    "어이없",
    "어이가 없",
    "황당",
    "최악",
    "실망",
    "안 좋아요",
)
# Agent formulae that carry sentiment words but say nothing about the customer's mood;
# masked so mono recordings do not read the agent's "thank you for calling" as a happy customer.
SENTIMENT_AGENT_FORMULAE: tuple[str, ...] = (
    "thank you for calling",
    "thanks for calling",
    "thank you for your patience",
    "thanks for your patience",
    "thank you for holding",
    "thank you for waiting",
    "that must be frustrating",
    "must be frustrating",
    "understand your frustration",
    "전화 주셔서 감사합니다",
    "이용해 주셔서 감사합니다",
    "기다려 주셔서 감사합니다",
    "답답하셨겠어요",
    "짜증나셨겠어요",
    "걱정되셨겠어요",
)

# Words that do not make an utterance substantive ("hi", "yes", "네").
FILLER_WORDS: tuple[str, ...] = (
    "hi",
    "hello",
    "hey",
    "yes",
    "yeah",
    "yep",
    "no",
    "ok",
    "okay",
    "um",
    "uh",
    "hmm",
    "thanks",
    "thank",
    "you",
    "good",
    "morning",
    "afternoon",
    "evening",
    "sure",
    "right",
    "oh",
    "네",
    "예",
    "아",
    "음",
    "여보세요",
    "안녕하세요",
    "감사합니다",
    "고맙습니다",
)
ISSUE_PHRASES: tuple[str, ...] = (
    "lost",
    "stolen",
    "not working",
    "does not work",
    "broken",
    "error",
    "charged twice",
    "double charged",
    "wrong",
    "problem",
    "issue",
    "cannot",
    "missing",
    "never arrived",
    "damaged",
    "분실",
    "잃어버",
    "도난",
    "안 돼",
    "오류",
    "에러",
    "문제",
    "잘못",
    "두 번",
    "고장",
    "파손",
    "안 와",
)

# (cues, English topic, Korean topic); earlier rows win ties.
TOPICS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (
        ("lost … card", "card … stolen", "stolen card", "카드…분실", "카드…잃어버", "카드…도난"),
        "a lost or stolen card",
        "카드 분실·도난",
    ),
    (("lost", "stolen", "분실", "잃어버", "도난"), "a lost or stolen item", "분실·도난"),
    (("refund*", "money back", "환불"), "a refund", "환불"),
    (
        ("charge*", "charging", "bill*", "invoice", "payment", "요금", "청구", "결제"),
        "a billing or payment problem",
        "요금·결제 문제",
    ),
    (
        ("password", "log in", "login", "locked out", "sign in", "비밀번호", "로그인", "접속"),
        "account access",
        "로그인·비밀번호 문제",
    ),
    (
        ("deliver*", "shipping", "package", "parcel", "tracking", "배송", "택배"),
        "a delivery",
        "배송",
    ),
    (
        ("cancel*", "unsubscribe", "close my account", "해지", "취소", "탈퇴"),
        "a cancellation",
        "해지·취소",
    ),
    (
        ("not working", "does not work", "error", "broken", "crash*", "오류", "에러", "고장"),
        "a technical problem",
        "기술적 문제",
    ),
    (
        ("change my", "update my", "address", "주소", "변경"),
        "changing account details",
        "정보 변경",
    ),
)
# (cues, English action, Korean action) read from the agent's turns for the summary.
ACTIONS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (
        ("let me check", "let me look", "확인해 보겠습니다", "확인해 드리겠습니다", "조회"),
        "checked the account",
        "계정 확인",
    ),
    (
        ("i have blocked", "blocked", "frozen", "froze", "정지", "차단"),
        "blocked the card",
        "카드·계정 정지",
    ),
    (
        ("replacement", "new card", "reissu*", "재발급", "교체", "새 카드"),
        "ordered a replacement",
        "재발급·교체 접수",
    ),
    (("refund*", "환불"), "arranged a refund", "환불 처리"),
    (("i have reset", "reset", "초기화", "재설정"), "reset the account", "초기화·재설정"),
    (
        ("i have cancelled", "i have canceled", "해지 처리", "취소 처리", "취소해 드렸"),
        "cancelled the service",
        "해지·취소 처리",
    ),
    (("i have updated", "변경해 드렸", "변경 완료"), "updated the account details", "정보 변경"),
    (("i will send", "i have sent", "발송", "보내 드리"), "sent follow-up details", "안내 발송"),
)

# --- wording -------------------------------------------------------------------------------

CRITERION_NAMES: dict[str, tuple[str, str]] = {
    "greeting": ("Greeting", "인사"),
    "identification": ("Identification", "본인 확인"),
    "empathy": ("Empathy", "공감"),
    "problem_solving": ("Problem solving", "문제 해결"),
    "accuracy": ("Accuracy", "정확한 안내"),
    "closing": ("Closing", "마무리"),
    "professionalism": ("Professionalism", "전문성·태도"),
}
REASON_FOUND: dict[str, tuple[str, str]] = {
    "greeting": ("Opening agent turns contain: {cues}.", "상담 초반 인사 표현: {cues}."),
    "identification": ("Identity-check cues: {cues}.", "본인 확인 표현: {cues}."),
    "empathy": ("Empathy/apology cues: {cues}.", "공감·사과 표현: {cues}."),
    "problem_solving": ("Action cues: {cues}.", "조치 표현: {cues}."),
    "accuracy": ("Confirmation/recap cues: {cues}.", "확인·요약 안내 표현: {cues}."),
    "closing": ("Closing agent turns contain: {cues}.", "상담 마무리 표현: {cues}."),
    "professionalism": (
        "No rude or dismissive phrases; courteous wording: {cues}.",
        "무례하거나 무시하는 표현 없음, 정중한 표현: {cues}.",
    ),
}
REASON_MISSING: dict[str, tuple[str, str]] = {
    "greeting": (
        "No greeting cue (e.g. 'hello', 'thank you for calling', 'my name is') "
        "in the opening agent turns.",
        "상담 초반에 인사 표현(예: '안녕하세요', '상담원 ○○입니다')이 없습니다.",
    ),
    "identification": (
        "No identity-check cue (e.g. name, date of birth, account number).",
        "본인 확인 표현(예: 성함, 생년월일)이 없습니다.",
    ),
    "empathy": (
        "No empathy or apology cue (e.g. 'I understand', 'I'm sorry to hear').",
        "공감·사과 표현(예: '불편을 드려 죄송합니다', '이해합니다')이 없습니다.",
    ),
    "problem_solving": (
        "No concrete action cue (e.g. 'let me check', 'I have processed').",
        "구체적 조치 표현(예: '확인해 보겠습니다', '처리해 드렸습니다')이 없습니다.",
    ),
    "accuracy": (
        "No confirmation or recap of next steps (e.g. 'just to confirm', "
        "'within 3 business days').",
        "처리 내용 확인·요약(예: '정리해 드리면', '영업일')이 없습니다.",
    ),
    "closing": (
        "No closing cue (e.g. 'anything else', 'have a great day') in the final agent turns.",
        "상담 종료 시 마무리 표현(예: '더 궁금하신 점', '좋은 하루')이 없습니다.",
    ),
    "professionalism": (
        "No rude or dismissive phrases, but no explicit courtesy ('please', 'thank you') either.",
        "무례한 표현은 없으나 정중한 표현도 없습니다.",
    ),
}
REASON_EXTRA: dict[str, tuple[str, str]] = {
    "late": (
        " Cues found only outside the expected part of the call: {cues}.",
        " 기대 구간 밖에서만 확인된 표현: {cues}.",
    ),
    "refusal": (" Refusal cues lower the score: {cues}.", " 거절 표현으로 감점: {cues}."),
    "hedge": (" Uncertain wording lowers the score: {cues}.", " 불확실한 표현으로 감점: {cues}."),
    "rude": ("Rude or dismissive phrases: {cues}.", "무례하거나 무시하는 표현: {cues}."),
    "hold": (
        " 'hold on' used without thanking the customer for waiting.",
        " 대기 요청 후 기다려 준 데 대한 감사 표현이 없습니다.",
    ),
    "no_agent": ("No agent speech to assess.", "평가할 상담원 발화가 없습니다."),
    "mono": (
        " (Mono recording: speakers are not separated, so all text was treated as possibly "
        "the agent's.)",
        " (모노 녹음: 화자 구분이 없어 모든 발화를 상담원 발화일 수 있는 것으로 간주했습니다.)",
    ),
}
IMPROVEMENT_POINTS: dict[str, tuple[str, str]] = {
    "greeting": ("Greeting was missing or minimal.", "인사가 없거나 부족했습니다."),
    "identification": (
        "The customer's identity was not verified.",
        "고객 본인 확인이 이루어지지 않았습니다.",
    ),
    "empathy": (
        "Little acknowledgement of the customer's situation or feelings.",
        "고객의 상황이나 감정에 대한 공감 표현이 부족했습니다.",
    ),
    "problem_solving": (
        "No clear action was taken to solve the issue.",
        "문제 해결을 위한 구체적 조치가 부족했습니다.",
    ),
    "accuracy": (
        "Next steps were not confirmed, or information was given with uncertainty.",
        "처리 내용과 다음 단계를 확인하지 않았거나 불확실하게 안내했습니다.",
    ),
    "closing": (
        "The call ended without a proper closing.",
        "적절한 마무리 인사 없이 상담이 끝났습니다.",
    ),
    "professionalism": (
        "Rude or dismissive language was used.",
        "무례하거나 고객을 무시하는 표현을 사용했습니다.",
    ),
}
COACHING_TIPS: dict[str, tuple[str, str]] = {
    "greeting": (
        'Open every call with a greeting and your name, e.g. "Thank you for calling, my name '
        'is [name]. How can I help you today?"',
        '상담 시작 시 "안녕하세요, 상담원 ○○입니다. 무엇을 도와드릴까요?"처럼 인사와 소개를 '
        "하세요.",
    ),
    "identification": (
        'Verify identity before discussing the account, e.g. "May I have your full name and '
        'date of birth, please?"',
        '계정 관련 안내 전 "본인 확인을 위해 성함과 생년월일을 말씀해 주시겠어요?"처럼 본인 '
        "확인을 하세요.",
    ),
    "empathy": (
        "Acknowledge the problem before solving it, e.g. \"I'm sorry to hear that, I understand "
        'how frustrating this is."',
        '해결에 앞서 "불편을 드려 죄송합니다. 많이 답답하셨겠어요."처럼 공감을 표현하세요.',
    ),
    "problem_solving": (
        'Say what you are doing and what you did, e.g. "Let me check your account ... I have '
        'processed the refund."',
        '"확인해 보겠습니다", "처리해 드렸습니다"처럼 진행 중인 조치와 결과를 명확히 말씀하세요.',
    ),
    "accuracy": (
        'Recap before closing, e.g. "Just to confirm, you will receive it within 3 business '
        'days." Replace "I\'m not sure" with "Let me check that for you."',
        '종료 전 "정리해 드리면, 3영업일 이내에 받으실 수 있습니다."처럼 요약하고, "잘 '
        '모르겠어요" 대신 "확인 후 안내해 드리겠습니다"라고 하세요.',
    ),
    "closing": (
        'Close with an offer of further help and thanks, e.g. "Is there anything else I can '
        'help you with? Have a great day."',
        '"더 궁금하신 점 있으실까요? 감사합니다, 좋은 하루 보내세요."처럼 마무리하세요.',
    ),
    "professionalism": (
        'Replace dismissive phrases{cues} with "I understand, let me see what I can do"; ask '
        "before placing the customer on hold and thank them for waiting.",
        '무시하는 표현{cues} 대신 "불편을 드려 죄송합니다, 제가 확인해 드리겠습니다"처럼 '
        "응대하고, 대기 후에는 기다려 주셔서 감사하다고 말씀하세요.",
    ),
}
STATUS_SENTENCES: dict[ResolutionStatus, tuple[str, str]] = {
    ResolutionStatus.RESOLVED: ("Resolved.", "해결되었습니다."),
    ResolutionStatus.PARTIALLY_RESOLVED: ("Partly resolved.", "일부만 해결되었습니다."),
    ResolutionStatus.UNRESOLVED: ("Not resolved.", "해결되지 않았습니다."),
    ResolutionStatus.ESCALATED: ("Escalated to another team.", "다른 부서로 이관되었습니다."),
    ResolutionStatus.UNKNOWN: ("Outcome unclear.", "처리 결과가 불분명합니다."),
}

STRENGTH_MIN_SCORE = 4
IMPROVEMENT_MAX_SCORE = 2
MAX_TEXT_CHARS = 200

# --- matching machinery --------------------------------------------------------------------

_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_GAP = "…"
_LATIN_GAP = r"(?: \S+){0,3}"
_HANGUL_GAP = ".{0,10}?"
_CONTRACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bcan't\b"), "cannot"),
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"'m\b"), " am"),
    (re.compile(r"'ve\b"), " have"),
    (re.compile(r"'ll\b"), " will"),
    (re.compile(r"'re\b"), " are"),
)
# STT usually drops apostrophes; expand the unambiguous bare forms the same way.
_BARE_CONTRACTIONS: dict[str, str] = {
    "im": "i am",
    "ive": "i have",
    "youre": "you are",
    "youve": "you have",
    "youll": "you will",
    "weve": "we have",
    "theyre": "they are",
    "dont": "do not",
    "doesnt": "does not",
    "didnt": "did not",
    "cant": "cannot",
    "isnt": "is not",
    "wasnt": "was not",
    "arent": "are not",
    "couldnt": "could not",
    "wouldnt": "would not",
}


@dataclass(frozen=True)
class _Cue:
    label: str
    pattern: re.Pattern[str]
    compact: bool  # matched against the space-free form (Hangul phrases)


@dataclass(frozen=True)
class _View:
    """One segment with the two normalized forms the cues are matched against."""

    index: int
    speaker: Speaker
    raw: str
    words: str
    compact: str


@dataclass(frozen=True)
class _Hit:
    label: str  # the table phrase: what distinct cues are counted by
    index: int  # segment position in the transcript
    offset: int  # position in the normalized segment text, to list cues in spoken order
    shown: str  # the text actually matched, for reasons


@dataclass(frozen=True)
class _Context:
    views: tuple[_View, ...]
    agent: tuple[_View, ...]  # agent turns, or unknown ones when no agent is labelled
    customer: tuple[_View, ...]  # customer turns, or unknown ones when none is labelled
    mono: bool
    korean: bool


@dataclass(frozen=True)
class _Result:
    """One rubric criterion: score, reason, matched cues and the quote that illustrates it."""

    score: int
    reason: str
    cues: tuple[str, ...]
    evidence: str


def _normalize_words(text: str) -> str:
    text = text.lower().replace("’", "'").replace("‘", "'")
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    text = re.sub(r"[\W_]+", " ", text.replace("'", ""))
    words = " ".join(_BARE_CONTRACTIONS.get(w, w) for w in text.split())
    return words.replace("can not", "cannot")


def _compact(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def _compile_phrase(phrase: str) -> _Cue:
    if _HANGUL.search(phrase):
        parts = (re.escape(_compact(p)) for p in phrase.split(_GAP))
        return _Cue(phrase, re.compile(_HANGUL_GAP.join(parts)), compact=True)
    pieces: list[str] = []
    for token in phrase.split():
        if token == _GAP:
            pieces.append(_LATIN_GAP)
            continue
        core = re.escape(_normalize_words(token.rstrip("*")))
        stem = r"\S*" if token.endswith("*") else ""
        pieces.append((" " if pieces else "") + core + stem)
    return _Cue(phrase, re.compile(r"(?<!\S)" + "".join(pieces) + r"(?!\S)"), compact=False)


def _compile(phrases: Sequence[str]) -> tuple[_Cue, ...]:
    # Longest first so a long phrase masks the shorter phrases inside it.
    return tuple(sorted((_compile_phrase(p) for p in phrases), key=lambda c: -len(c.label)))


_GREETING = _compile(GREETING_PHRASES)
_IDENTIFICATION = _compile(IDENTIFICATION_PHRASES)
_EMPATHY = _compile(EMPATHY_PHRASES)
_PROBLEM_SOLVING = _compile(PROBLEM_SOLVING_PHRASES)
_REFUSAL_MASKS = _compile(REFUSAL_MASKS)
_ACCURACY = _compile(ACCURACY_PHRASES)
_HEDGES = _compile(HEDGE_PHRASES)
_CLOSING = _compile(CLOSING_PHRASES)
_RUDE = _compile(RUDE_PHRASES)
_RUDE_EXCUSED = _compile(RUDE_EXCUSED)
_COURTESY = _compile(COURTESY_PHRASES)
_HOLD = _compile(HOLD_PHRASES)
_HOLD_THANKS = _compile(HOLD_THANKS)
_RESOLVED = _compile(RESOLVED_PHRASES)
_UNRESOLVED = _compile(UNRESOLVED_PHRASES)
_ESCALATED = _compile(ESCALATED_PHRASES)
_RESOLUTION_BENIGN = _compile(RESOLUTION_BENIGN)
_POSITIVE = _compile(POSITIVE_WORDS)
_NEGATIVE = _compile(NEGATIVE_WORDS)
_SENTIMENT_FORMULAE = _compile(SENTIMENT_AGENT_FORMULAE)
_ISSUE = _compile(ISSUE_PHRASES)
_TOPICS = tuple((_compile(cues), en, ko) for cues, en, ko in TOPICS)
_ACTIONS = tuple((_compile(cues), en, ko) for cues, en, ko in ACTIONS)
_AGENT_FORMULAE = _GREETING + _IDENTIFICATION + _EMPATHY + _PROBLEM_SOLVING + _CLOSING
_FILLERS = frozenset(FILLER_WORDS)


def _mask(cue: _Cue, texts: dict[bool, str]) -> list[re.Match[str]]:
    """Blank out the cue's matches (so shorter cues cannot reuse them) and return them."""
    matches = list(cue.pattern.finditer(texts[cue.compact]))
    text = texts[cue.compact]
    for m in matches:
        text = text[: m.start()] + "\x00" * (m.end() - m.start()) + text[m.end() :]
    texts[cue.compact] = text
    return matches


def _shown(cue: _Cue, match: re.Match[str]) -> str:
    # Space-free Korean matches read badly, and gaps may hold names: show the phrase instead.
    if cue.compact:
        return cue.label.replace(_GAP, "○○")
    return re.sub("\x00+", "…", match.group())


def _scan(
    cues: tuple[_Cue, ...], views: Sequence[_View], masks: tuple[_Cue, ...] = ()
) -> list[_Hit]:
    """All occurrences of `cues` in `views`, after removing the `masks` phrases."""
    hits: list[_Hit] = []
    for view in views:
        texts = {False: view.words, True: view.compact}
        for cue in masks:
            _mask(cue, texts)
        for cue in cues:
            hits.extend(
                _Hit(cue.label, view.index, m.start(), _shown(cue, m)) for m in _mask(cue, texts)
            )
    return hits


def _distinct(hits: Sequence[_Hit]) -> tuple[str, ...]:
    """Distinct cues in order of first appearance, each shown as first matched."""
    first: dict[str, str] = {}
    for hit in sorted(hits, key=lambda h: (h.index, h.offset)):
        first.setdefault(hit.label, hit.shown)
    return tuple(first.values())


# --- context -------------------------------------------------------------------------------


def _context(transcript: Transcript) -> _Context:
    views = tuple(
        _View(i, s.speaker, s.text, _normalize_words(s.text), _compact(s.text))
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
    )


def _is_korean(transcript: Transcript, views: Sequence[_View]) -> bool:
    if transcript.language:
        return transcript.language.lower().startswith("ko")
    # No language tag: go by script, Hangul syllables against everything else.
    text = " ".join(v.raw for v in views)
    hangul = len(_HANGUL.findall(text))
    return hangul > 0 and hangul >= count_speech_units(text) - hangul


def _head(views: Sequence[_View]) -> tuple[_View, ...]:
    return tuple(views[: _window(views)])


def _tail(views: Sequence[_View]) -> tuple[_View, ...]:
    return tuple(views[len(views) - _window(views) :])


def _window(views: Sequence[_View]) -> int:
    # Opening/closing window: a third of the turns, at least two.
    return max(2, math.ceil(len(views) / 3))


def _say(
    ctx: _Context, table: dict[str, tuple[str, str]], key: str, cues: Sequence[str] = ()
) -> str:
    template = table[key][1 if ctx.korean else 0]
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


def _windowed(
    ctx: _Context, key: str, cues: tuple[_Cue, ...], window: tuple[_View, ...]
) -> _Result:
    """Greeting/closing: cues must be in the opening/closing agent turns to count fully."""
    found = _distinct(_scan(cues, window))
    if found:
        return _Result(_cue_score(len(found), 0), _say(ctx, REASON_FOUND, key, found), found, "")
    late = _distinct(_scan(cues, ctx.agent))
    reason = _say(ctx, REASON_MISSING, key)
    if late:
        reason += _say(ctx, REASON_EXTRA, "late", late)
    fallback = window[-1 if key == "closing" else 0].index if window else None
    return _Result(1 if late else 0, reason, late, _quote(ctx, fallback))


def _counted(
    ctx: _Context, key: str, cues: tuple[_Cue, ...], masks: tuple[_Cue, ...] = ()
) -> _Result:
    found = _distinct(_scan(cues, ctx.agent, masks))
    table = REASON_FOUND if found else REASON_MISSING
    return _Result(_cue_score(len(found), 1), _say(ctx, table, key, found), found, "")


def _greeting(ctx: _Context) -> _Result:
    return _windowed(ctx, "greeting", _GREETING, _head(ctx.agent))


def _closing(ctx: _Context) -> _Result:
    return _windowed(ctx, "closing", _CLOSING, _tail(ctx.agent))


def _identification(ctx: _Context) -> _Result:
    return _counted(ctx, "identification", _IDENTIFICATION)


def _empathy(ctx: _Context) -> _Result:
    result = _counted(ctx, "empathy", _EMPATHY)
    if result.score > IMPROVEMENT_MAX_SCORE:
        return result
    # Evidence: what the agent said right after the customer first sounded unhappy.
    upset = [h.index for h in _scan(_NEGATIVE, ctx.customer, _SENTIMENT_FORMULAE)]
    reply = next((v.index for v in ctx.agent if upset and v.index > min(upset)), None)
    return _Result(result.score, result.reason, result.cues, _quote(ctx, reply))


def _penalized(
    ctx: _Context, base: _Result, extra_key: str, penalty_hits: list[_Hit], weight: int
) -> _Result:
    """Lower a cue-based score by `weight` per distinct penalty cue, quoting the first one."""
    penalties = _distinct(penalty_hits)
    if not penalties:
        return base
    reason = base.reason + _say(ctx, REASON_EXTRA, extra_key, penalties)
    first = min(h.index for h in penalty_hits)
    return _Result(
        _clamp(base.score - weight * len(penalties)), reason, base.cues, _quote(ctx, first)
    )


def _problem_solving(ctx: _Context) -> _Result:
    base = _counted(ctx, "problem_solving", _PROBLEM_SOLVING, _REFUSAL_MASKS)
    refusals = _scan(_UNRESOLVED, ctx.agent, _RESOLUTION_BENIGN)
    return _penalized(ctx, base, "refusal", refusals, weight=1)


def _accuracy(ctx: _Context) -> _Result:
    base = _counted(ctx, "accuracy", _ACCURACY)
    return _penalized(ctx, base, "hedge", _scan(_HEDGES, ctx.agent), weight=2)


def _professionalism(ctx: _Context) -> _Result:
    if not ctx.agent:  # silence is not politeness
        return _Result(0, _say(ctx, REASON_EXTRA, "no_agent"), (), "")
    rude_hits = _scan(_RUDE, ctx.agent, _RUDE_EXCUSED)
    hold_hits = _scan(_HOLD, ctx.agent)
    # "hold on" is only curt when the customer is never thanked for waiting.
    unthanked_hold = bool(hold_hits) and not _scan(_HOLD_THANKS, ctx.agent)
    rude = _distinct(rude_hits)
    if not rude and not unthanked_hold:
        courtesy = _distinct(_scan(_COURTESY, ctx.agent))
        table = REASON_FOUND if courtesy else REASON_MISSING
        reason = _say(ctx, table, "professionalism", courtesy)
        return _Result(5 if courtesy else 4, reason, courtesy, "")
    reason = _say(ctx, REASON_EXTRA, "rude", rude) if rude else ""
    if unthanked_hold:
        reason = (reason + _say(ctx, REASON_EXTRA, "hold")).strip()
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
    note = _say(ctx, REASON_EXTRA, "mono")
    return {k: _Result(r.score, r.reason + note, r.cues, r.evidence) for k, r in results.items()}


# --- outcome and sentiment -----------------------------------------------------------------


def _resolution(ctx: _Context) -> ResolutionStatus:
    # The agent states the outcome; the customer only counts near the end ("it works now").
    half = len(ctx.views) / 2
    late_customer = {v.index: v for v in ctx.customer if v.index >= half}
    views = sorted(
        {**late_customer, **{v.index: v for v in ctx.agent}}.values(), key=lambda v: v.index
    )
    escalated = len(_distinct(_scan(_ESCALATED, ctx.agent)))
    unresolved = len(_distinct(_scan(_UNRESOLVED, views, _RESOLUTION_BENIGN)))
    resolved = len(_distinct(_scan(_RESOLVED, views, _RESOLUTION_BENIGN + _UNRESOLVED)))
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


def _sentiment(views: Sequence[_View]) -> Sentiment:
    negative = len(_scan(_NEGATIVE, views, _SENTIMENT_FORMULAE))
    # Negative phrases are masked first so "not great" is not also counted as "great".
    positive = len(_scan(_POSITIVE, views, _SENTIMENT_FORMULAE + _NEGATIVE))
    if positive > negative:
        return Sentiment.POSITIVE
    if negative > positive:
        return Sentiment.NEGATIVE
    return Sentiment.NEUTRAL


def _customer_sentiment(ctx: _Context) -> CustomerSentiment:
    turns = ctx.customer
    third = max(1, math.ceil(len(turns) / 3))
    return CustomerSentiment(start=_sentiment(turns[:third]), end=_sentiment(turns[-third:]))


# --- intent, issue, summary ----------------------------------------------------------------


def _is_substantive(view: _View) -> bool:
    rest = " ".join(w for w in view.words.split() if w not in _FILLERS)
    # Korean needs more units: they are syllables, not words.
    return count_speech_units(rest) >= (6 if _HANGUL.search(rest) else 3)


def _customer_statements(ctx: _Context) -> list[_View]:
    """Substantive customer turns; in mono calls, skip turns that sound like the agent."""
    statements = [v for v in ctx.customer if _is_substantive(v)]
    if ctx.mono:
        statements = [v for v in statements if not _scan(_AGENT_FORMULAE, [v])]
    return statements


def _truncate(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= MAX_TEXT_CHARS:
        return text
    return text[:MAX_TEXT_CHARS].rsplit(" ", 1)[0] + "…"


def _intent_and_issue(statements: Sequence[_View]) -> tuple[str, str]:
    if not statements:
        return "", ""
    intent = statements[0].raw.strip()
    if count_speech_units(intent) < 8 and len(statements) > 1:
        intent = f"{intent} {statements[1].raw.strip()}"  # a short opener rarely says it all
    issue_view = next((v for v in statements if _scan(_ISSUE, [v])), statements[0])
    return _truncate(intent), _truncate(issue_view.raw)


def _topic(ctx: _Context, statements: Sequence[_View]) -> str | None:
    early = statements[: max(1, len(statements) // 2)]
    counts = [(len(_scan(cues, early)), en, ko) for cues, en, ko in _TOPICS]
    best = max(counts, key=lambda c: c[0], default=(0, "", ""))  # max keeps the first on ties
    if not best[0]:
        return None
    return best[2] if ctx.korean else best[1]


def _actions(ctx: _Context) -> list[str]:
    found = [
        ko if ctx.korean else en
        for cues, en, ko in _ACTIONS
        if _scan(cues, ctx.agent, _REFUSAL_MASKS)
    ]
    return found[:3]


def _summary(ctx: _Context, intent: str, topic: str | None, status: ResolutionStatus) -> str:
    actions = _actions(ctx)
    outcome = STATUS_SENTENCES[status][1 if ctx.korean else 0]
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
            label = CRITERION_NAMES[name][1 if ctx.korean else 0]
            cues = ", ".join(f"'{c}'" for c in result.cues)
            out.append(f"{label} ({result.score}/5)" + (f": {cues}" if cues else ""))
    return out


def _improvements(ctx: _Context, results: dict[str, _Result]) -> list[ImprovementPoint]:
    lang = 1 if ctx.korean else 0
    return [
        ImprovementPoint(
            point=f"{IMPROVEMENT_POINTS[name][lang]} {results[name].reason}",
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
        tips.append(COACHING_TIPS[name][1 if ctx.korean else 0].format(cues=cues))
    return tips


# --- entry point ---------------------------------------------------------------------------


def analyze_locally(transcript: Transcript) -> ConsultationAnalysis:
    """Score a (PII-redacted) consultation with phrase rules; deterministic and offline."""
    ctx = _context(transcript)
    results = _evaluate(ctx)
    status = _resolution(ctx)
    statements = _customer_statements(ctx)
    intent, issue = _intent_and_issue(statements)
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
