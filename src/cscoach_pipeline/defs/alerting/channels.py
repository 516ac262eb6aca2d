"""Where alerts go: a Slack incoming webhook (slack_sdk, which dagster-slack is built on), a
Microsoft Teams Workflows or connector webhook (dagster-msteams' client and adaptive card),
or any HTTP endpoint as signed JSON. A failed delivery raises `DeliveryError` whose text never
holds the URL: a webhook URL is itself the secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any, Protocol
from urllib.parse import urlsplit

from cscoach_pipeline.defs.alerting.messages import AlertMessage

SIGNATURE_HEADER = "X-Cscoach-Signature"


class DeliveryError(Exception):
    """The channel did not take the message (its answer, never its URL)."""


class AlertChannel(Protocol):
    name: str

    def send(self, message: AlertMessage) -> None: ...


def scrub(text: str, url: str) -> str:
    """`text` without the URL, or its path, or any of its path's segments of 8 characters
    or more (the part of a webhook URL that is the secret)."""
    parts = urlsplit(url)
    secrets = [url, parts.path, parts.query]
    secrets += [p for p in re.split(r"[/?&=]", parts.path + "?" + parts.query) if len(p) >= 8]
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "<secret>")
    return text


def _failure(channel: str, exc: BaseException) -> DeliveryError:
    # Exception texts of HTTP clients quote the URL: keep the class and the OS reason only.
    reason = getattr(exc, "reason", None) or getattr(exc, "__cause__", None)
    shown = type(exc).__name__
    if isinstance(reason, OSError) and reason.strerror:
        shown += f" ({reason.strerror})"
    return DeliveryError(f"{channel}: {shown}")


def _answer(channel: str, status: int, body: str, url: str) -> DeliveryError:
    # Servers echo the request ("Cannot POST /hook/<secret>"): the answer without the URL.
    return DeliveryError(f"{channel} answered {status}: {scrub(body.strip(), url)[:200]}")


class SlackChannel:
    """A Slack incoming webhook: one message with a header and a section per line."""

    name = "slack"

    def __init__(self, url: str, timeout_s: float) -> None:
        from slack_sdk.webhook import WebhookClient

        self._url = url
        self._client = WebhookClient(url, timeout=int(max(1, timeout_s)))

    @staticmethod
    def blocks(message: AlertMessage) -> list[dict[str, Any]]:
        lines = [
            f"• <{message.links[line]}|{_slack_escape(line)}>"
            if line in message.links
            else f"• {_slack_escape(line)}"
            for line in message.lines
        ]
        if message.more:
            lines.append(f"• … and {message.more} more")
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": message.title[:150]}}
        ]
        # A section holds at most 3000 characters: split the lines over several.
        chunk: list[str] = []
        for line in lines:
            if sum(len(c) + 1 for c in chunk) + len(line) > 2900:
                blocks.append(_section(chunk))
                chunk = []
            chunk.append(line)
        if chunk:
            blocks.append(_section(chunk))
        return blocks

    def send(self, message: AlertMessage) -> None:
        try:
            response = self._client.send(text=message.text, blocks=self.blocks(message))
        except Exception as exc:  # slack_sdk raises urllib's errors as they come
            raise _failure(self.name, exc) from None
        if response.status_code != 200:
            raise _answer(self.name, response.status_code, response.body or "", self._url)


def _section(lines: list[str]) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class TeamsChannel:
    """Microsoft Teams through dagster-msteams: an adaptive card, which both the Workflows
    webhooks and the older connector webhooks accept."""

    name = "teams"

    def __init__(self, url: str, timeout_s: float) -> None:
        from dagster_msteams import MSTeamsResource

        self._url = url
        self._client = MSTeamsResource(hook_url=url, timeout=timeout_s).get_client()

    @staticmethod
    def payload(message: AlertMessage) -> dict[str, Any]:
        from dagster_msteams.adaptive_card import AdaptiveCard

        card = AdaptiveCard()
        card.add_attachment(f"**{message.title}**")
        for line in message.lines:
            link = message.links.get(line)
            card.add_attachment(f"- [{line}]({link})" if link else f"- {line}")
        if message.more:
            card.add_attachment(f"- ... and {message.more} more")
        return card.payload

    def send(self, message: AlertMessage) -> None:
        import requests

        try:
            self._client.post_message(payload=self.payload(message))
        except requests.exceptions.RequestException as exc:
            # Its client raises the endpoint's answer as the message of a bare
            # RequestException; every other one (connection, a malformed URL) quotes the URL.
            if type(exc) is requests.exceptions.RequestException:
                raise DeliveryError(
                    f"{self.name} refused the card: {scrub(str(exc), self._url)[:200]}"
                ) from None
            raise _failure(self.name, exc) from None


class WebhookChannel:
    """Any endpoint: the message as JSON, signed with HMAC-SHA256 of the body when a secret
    is set (header `X-Cscoach-Signature: sha256=<hex>`), as GitHub and Stripe sign theirs."""

    name = "webhook"

    def __init__(self, url: str, timeout_s: float, secret: str | None = None) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._secret = secret

    @staticmethod
    def body(message: AlertMessage) -> dict[str, Any]:
        return {
            "source": "cscoach-pipeline",
            "kind": message.kind.value,
            "severity": message.severity,
            "title": message.title,
            "text": message.text,
            "items": message.items,
        }

    def send(self, message: AlertMessage) -> None:
        import requests

        data = json.dumps(self.body(message), sort_keys=True, default=str).encode()
        headers = {"Content-Type": "application/json"}
        if self._secret:
            digest = hmac.new(self._secret.encode(), data, hashlib.sha256).hexdigest()
            headers[SIGNATURE_HEADER] = f"sha256={digest}"
        try:
            response = requests.post(self._url, data=data, headers=headers, timeout=self._timeout_s)
        except requests.exceptions.RequestException as exc:
            raise _failure(self.name, exc) from None
        if not response.ok:
            raise _answer(self.name, response.status_code, response.text, self._url)
