"""The scripted calls the integration tests speak and then check transcripts against."""

from __future__ import annotations

from tests.support.media_factory import Line

GOOD_CALL = [
    Line("agent", "Thank you for calling Acme support, my name is Sarah. "
                  "How can I help you today?"),
    Line("customer", "Hi, I lost my credit card yesterday and I am worried."),
    Line("agent", "I am sorry to hear that, I understand. May I have your full name to verify "
                  "your account?"),
    Line("customer", "My name is John Smith. My email is john at example dot com."),
    Line("customer", "You can reach me at 010 4321 8765."),
    Line("agent", "Thank you. Let me check. I have blocked the card and ordered a replacement. "
                  "You will receive it within five business days."),
    Line("customer", "That is great, thank you so much for your help."),
    Line("agent", "You are welcome. Is there anything else I can help you with? "
                  "Have a great day."),
]  # fmt: skip

BAD_CALL = [
    Line("agent", "Yeah, what do you want?"),
    Line("customer", "My internet has been down for three days and this is ridiculous."),
    Line("agent", "Whatever. That is not my problem, calm down."),
    Line("customer", "This is unacceptable, I am very angry and I want it fixed."),
    Line("agent", "There is nothing I can do. Call back later."),
]  # fmt: skip

# PII the good call speaks: none of these may appear in any table.
SPOKEN_PII = ["example dot com", "example.com", "john@", "4321", "8765", "forty three"]


def script_text(lines: list[Line]) -> str:
    return " ".join(line.text for line in lines)
