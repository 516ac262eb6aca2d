"""Speaker labels to roles: English and Korean role words ("Agent", "상담사님", "Customer
Support") and the agent's own names ("Sarah:" when Sarah is the agent)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from cscoach_pipeline.defs.speech.transcript import Speaker

_AGENT_ROLES = frozenset(
    {
        "agent",
        "representative",
        "rep",
        "csr",
        "advisor",
        "adviser",
        "support",
        "operator",
        "assistant",
        "staff",
        "customer_service",
        "customer_support",
        "customer_care",
        "상담원",
        "상담사",
        "직원",
        "고객센터",  # "customer centre" is the company side, despite starting with 고객
        "콜센터",
    }
)
_CUSTOMER_ROLES = frozenset(
    {
        "customer",
        "client",
        "caller",
        "user",
        "visitor",
        "end_user",
        "enduser",
        "고객",
        "손님",
        "고객님",
    }
)
# Korean labels take honorific/particle suffixes (상담사님, 고객분), so match them as prefixes.
_KO_AGENT_PREFIXES = ("상담원", "상담사", "직원")
_KO_CUSTOMER_PREFIXES = ("고객", "손님")


def _role_of_token(token: str) -> Speaker | None:
    if token in _AGENT_ROLES or token.startswith(_KO_AGENT_PREFIXES):
        return Speaker.AGENT
    if token in _CUSTOMER_ROLES or token.startswith(_KO_CUSTOMER_PREFIXES):
        return Speaker.CUSTOMER
    return None


def _normalise_label(label: str) -> str:
    return " ".join(label.strip().strip("[]*_").strip().casefold().split())


def speaker_for_label(label: str, agent_names: Sequence[str]) -> Speaker | None:
    """Map a speaker label to a role, or None if it names nobody we recognise."""
    norm = _normalise_label(label)
    if not norm:
        return None
    tokens = [t for t in re.split(r"[\W_]+", norm) if t]
    names = [_normalise_label(n) for n in agent_names if n and n.strip()]
    if norm in names or any(" " not in n and n in tokens for n in names):
        return Speaker.AGENT
    exact = _role_of_token(norm.replace(" ", "_").replace("-", "_"))
    if exact is not None:
        return exact
    if not tokens:
        return None
    # "Customer Support" is the agent, "Agent Kim" too: the last word decides, then the first.
    return _role_of_token(tokens[-1]) or _role_of_token(tokens[0])


def looks_like_name(label: str) -> bool:
    """Whether an unrecognised "X:" prefix is plausibly a speaker name rather than prose."""
    words = label.split()
    if not 1 <= len(words) <= 3:
        return False
    if re.search(r"[?!,;\"“”<>=/\\|{}]", label) or not any(c.isalpha() for c in label):
        return False
    # Names are capitalised ("John Smith", "Speaker 2"); "note to self:" is prose. Hangul is
    # caseless, so it passes.
    return all(not w[0].islower() for w in words)
