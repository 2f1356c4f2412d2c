"""A plain SMTP client for notification email (``resources/notify.py`` builds it for Dagster).

One connection per message: notifications are few per run and a held connection would go stale
between runs. ``Message-ID`` and ``Idempotency-Key`` carry the delivery's key, so a mail system (or
a reader) can drop the copy a crash between sending and recording may cause.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

DEFAULT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Mailer:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    def send(self, to: str, subject: str, text: str, key: str) -> None:
        """Send one message; raises :class:`smtplib.SMTPException` or :class:`OSError` on failure."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = f"<{key}@oddsforge>"
        message["Idempotency-Key"] = key
        message.set_content(text)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)
