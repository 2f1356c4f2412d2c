"""Notification channels as Dagster resources: the SMTP server for email and the webhook sender's
policy. Assets take ``dg.ResourceParam[Mailer | None]`` / ``dg.ResourceParam[WebhookSender]`` and get
the plain classes of ``services/``; settings come from ``resources/settings.py``."""

from __future__ import annotations

import dagster as dg

from domain.marketplace.notify import WebhookPolicy
from services.mail import DEFAULT_TIMEOUT_SECONDS, Mailer
from services.notify import WebhookSender


class SmtpResource(dg.ConfigurableResource):
    """An SMTP server that accepts the platform's notification email."""

    host: str
    port: int = 25
    sender: str
    username: str | None = None
    password: str | None = None
    """Read at run time through ``dg.EnvVar`` (``ODDSFORGE_SMTP_PASSWORD``), never stored in code."""
    starttls: bool = False
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    def create_resource(self, context: dg.InitResourceContext) -> Mailer:
        return Mailer(
            self.host, self.port, self.sender, self.username, self.password, self.starttls, self.timeout
        )


class WebhooksResource(dg.ConfigurableResource):
    """Where users' webhooks may go (``domain.marketplace.notify.WebhookPolicy``)."""

    production: bool = False
    loopback_http: bool = False

    def create_resource(self, context: dg.InitResourceContext) -> WebhookSender:
        return WebhookSender(WebhookPolicy(self.production, self.loopback_http))
