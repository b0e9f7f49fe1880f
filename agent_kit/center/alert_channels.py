"""Sending one incident event to one channel: the generic webhook (JSON of ids and parameters),
a chat webhook (Slack-compatible ``{"text": ...}``, also Mattermost's and Rocket.Chat's), email
over SMTP (stdlib ``smtplib``: STARTTLS, TLS or plain, with or without login).

Each send is one *round*: up to ``attempts`` tries with stamina's exponential back-off and
jitter, tried again only when the failure may pass (no connection, a timeout, an HTTP 5xx or
429, an SMTP 4xx or a dropped connection), never after a refusal (another HTTP 4xx, an SMTP
5xx, a failed login). The :class:`Outcome` tells the outbox (``alerts.py``) whether to try
again later. Log lines and stored errors name the channel and the failure's kind (``HTTP 503``,
``ConnectError``, ``SMTP 451``), never a URL or a password.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import httpx
import stamina
from stamina.instrumentation import RetryDetails

from agent_kit.center.alert_config import Channel, DeliveryPolicy

log = logging.getLogger("agent_kit.center.alerts")
# httpx logs each request at INFO with its URL, and a chat webhook's URL is its credential: a
# center run with INFO logging must not write it.
logging.getLogger("httpx").setLevel(logging.WARNING)
WAIT_MAX_S = 5.0          # longest back-off between two tries of a round
# The failures that may pass by themselves: no connection, a reset one, no answer in time.
TRANSIENT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class Outcome:
    """What one round of sending came to: ``sent``; else ``retry`` (the failure may pass:
    try again later) and ``reason`` (safe to log and store: no URL, no secret)."""

    sent: bool
    retry: bool = False
    reason: str = ""


SENT = Outcome(sent=True)


def transient(exc: BaseException) -> bool:
    """Is a failure worth another try: a network failure or timeout, an HTTP 5xx (the receiver
    is down or overloaded) or 429, an SMTP 4xx or a dropped SMTP connection; never another
    refusal (the same request would be refused again)."""
    if isinstance(exc, httpx.HTTPStatusError):
        code = exc.response.status_code
        return code == 429 or code >= 500
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return False
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError):
        return True
    if isinstance(exc, smtplib.SMTPException | ssl.SSLError):
        return False    # STARTTLS not offered, a certificate refused: the same again
    # no connection, reset, a timeout (OSError covers socket's), a name not resolved
    return isinstance(exc, (*TRANSIENT_ERRORS, OSError))


def failure(exc: BaseException) -> str:
    """A failure in words safe for logs: its HTTP status, SMTP code or exception class."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _ in exc.recipients.values()})
        return "SMTP recipients refused (" + ", ".join(map(str, codes)) + ")"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"SMTP {exc.smtp_code}"
    return type(exc).__name__


def log_retry(details: RetryDetails) -> None:
    """stamina's hook for each retry it schedules: one log line, as every center log."""
    log.warning("alert delivery failed (try %d), trying again in %.1f s: %s",
                details.retry_num, details.wait_for, failure(details.caused_by))


def post_json(url: str, payload: dict[str, object], *, attempts: int = 3,
              timeout_s: float = 5.0, backoff_s: float = 0.5) -> Outcome:
    """POST JSON; sent once a try got a 2xx. At most ``attempts`` tries, each with
    ``timeout_s`` timeouts; transient failures (:func:`transient`) wait ``backoff_s``, then
    twice that, ... (plus up to ``backoff_s`` of jitter, at most ``WAIT_MAX_S``) and try again.
    Never raises."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "agent-center"}
    try:
        with httpx.Client(timeout=timeout_s, headers=headers) as client:
            for attempt in stamina.retry_context(
                    on=transient, attempts=attempts, timeout=None, wait_initial=backoff_s,
                    wait_max=WAIT_MAX_S, wait_jitter=backoff_s):
                with attempt:
                    client.post(url, content=body).raise_for_status()
        return SENT
    except Exception as exc:  # noqa: BLE001 - a channel must never break the center
        return Outcome(sent=False, retry=transient(exc), reason=failure(exc))


def send_email(channel: Channel, subject: str, body: str, *, attempts: int = 3,
               timeout_s: float = 5.0, backoff_s: float = 0.5) -> Outcome:
    """One plain-text message to the channel's recipients over SMTP (``security``: STARTTLS
    with the system's CA certificates, TLS from the first byte, or none), logged in when the
    channel has a username. Tries like :func:`post_json`. Never raises."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = channel.sender
    message["To"] = ", ".join(channel.recipients)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=(channel.sender or "agent-center").split("@")[-1])
    message.set_content(body)
    assert channel.host is not None
    try:
        for attempt in stamina.retry_context(
                on=transient, attempts=attempts, timeout=None, wait_initial=backoff_s,
                wait_max=WAIT_MAX_S, wait_jitter=backoff_s):
            with attempt:
                _smtp_send(channel, message, timeout_s)
        return SENT
    except Exception as exc:  # noqa: BLE001 - a channel must never break the center
        return Outcome(sent=False, retry=transient(exc), reason=failure(exc))


def _smtp_send(channel: Channel, message: EmailMessage, timeout_s: float) -> None:
    assert channel.host is not None
    context = ssl.create_default_context(cafile=channel.ca_file)
    smtp: smtplib.SMTP
    if channel.security == "ssl":
        smtp = smtplib.SMTP_SSL(channel.host, channel.port, timeout=timeout_s, context=context)
    else:
        smtp = smtplib.SMTP(channel.host, channel.port, timeout=timeout_s)
    with smtp:
        smtp.ehlo()
        if channel.security == "starttls":
            smtp.starttls(context=context)
            smtp.ehlo()
        if channel.username is not None and channel.password is not None:
            smtp.login(channel.username, channel.password)
        smtp.send_message(message)


def send(channel: Channel, event_json: dict[str, object], text: str, subject: str,
         policy: DeliveryPolicy) -> Outcome:
    """One round of delivering an incident event to ``channel``: the webhook gets
    ``event_json``, the chat ``{"text": text}``, email ``subject`` and ``text``."""
    if channel.kind == "email":
        return send_email(channel, subject, text, attempts=policy.attempts,
                          timeout_s=policy.timeout_s, backoff_s=policy.backoff_s)
    assert channel.url is not None
    payload: dict[str, object] = event_json if channel.kind == "webhook" else {"text": text}
    return post_json(channel.url, payload, attempts=policy.attempts,
                     timeout_s=policy.timeout_s, backoff_s=policy.backoff_s)
