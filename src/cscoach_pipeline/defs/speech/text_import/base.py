"""What every text-consultation parser shares: the error users see, the request it receives and
the refusal of chats with too many messages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cscoach_pipeline.defs.speech.transcript import Segment
from cscoach_pipeline.errors import ConsultationInputError


class TextImportError(ConsultationInputError, ValueError):
    """Readable reason why a file could not be read as a text consultation."""


@dataclass(frozen=True)
class ParseRequest:
    """One decoded file for a parser: its text and the rules it is read under."""

    text: str
    agent_names: Sequence[str]
    max_segments: int
    # What format sniffing already worked out (the JSON document of a ".txt" that holds JSON),
    # so the parser need not do it again; None when nothing was.
    preloaded: Any = None


Parser = Callable[[ParseRequest], list[Segment]]


def too_many_segments(limit: int) -> TextImportError:
    return TextImportError(
        f"chat is too long: more than {limit:,} messages (the limit is set by "
        "CSCOACH_MAX_CHAT_SEGMENTS)"
    )
