"""Follows and a delivered notification in ``oddsforge demo``, over the product's own API (in-process)
and pipeline steps, with a webhook receiver on loopback (``cli/webhook_receiver.py``):

1. dana registers the receiver as her webhook endpoint (``POST /me/webhooks``; plain HTTP to
   loopback is allowed for the demo only) and keeps the signing secret it answers once;
2. she follows alice (``POST /creators/alice/follow``) and subscribes to alice's free model;
3. alice ships a new version of it (``PUT /models/{id}``);
4. the pipeline folds the subscription and the version, ``model_status`` writes dana's
   ``new_version`` notification to the outbox, and ``notification_deliveries`` posts it, signed;
5. the receiver checks the signature with the secret.

Every run makes one more version of the model, so a re-run has a new notification to deliver (to a
new endpoint: each run's receiver listens on a new port, and the previous run's endpoint is removed).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from typing import Any

import dagster as dg

from api.app import create_app
from api.auth import mint_token
from api.settings import ApiSettings
from assets.marketplace import model_status, subscriptions
from assets.models import model_versions
from assets.notify import follows, notification_deliveries
from cli.demo import DEMO_MODELS, demo_model_id
from cli.runner import QUIET_RUN, Progress
from cli.webhook_receiver import WebhookReceiver
from domain.marketplace.notify import WebhookPolicy
from services.notify import SIGNATURE_HEADER, WebhookSender, verify_signature
from stores.follows import FollowStore
from stores.lake import Lake

SUBSCRIBER = "dana"
CREATOR, MODEL_BODY = DEMO_MODELS[0]
MODEL_ID = demo_model_id(CREATOR, MODEL_BODY["name"])


def run_notify_demo(lake: Lake, progress: Progress) -> dict[str, Any]:
    """Steps 1-5 above; the report names the endpoint, the delivered notification and the check."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Starlette's notice about its client's next httpx
        from fastapi.testclient import TestClient

    settings = replace(ApiSettings.from_env(), webhook_loopback_http=True)
    with WebhookReceiver() as receiver, TestClient(create_app(settings, lake=lake)) as api:

        def call(user: str, method: str, path: str, body: Any = None) -> Any:
            headers = {"Authorization": f"Bearer {mint_token(user, settings.jwt_secret)}"}
            answer = api.request(method, path, json=body, headers=headers)
            if answer.status_code >= 300:
                raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text}")
            return answer.json() if answer.content else None

        for old in call(SUBSCRIBER, "GET", "/me/webhooks"):
            call(SUBSCRIBER, "DELETE", f"/me/webhooks/{old['endpoint_id']}")
        endpoint = call(SUBSCRIBER, "POST", "/me/webhooks", {"url": receiver.url})
        progress(
            f"notifications: {SUBSCRIBER} registered webhook {endpoint['endpoint_id']} at {receiver.url}"
        )
        call(SUBSCRIBER, "POST", f"/creators/{CREATOR}/follow")
        call(SUBSCRIBER, "POST", "/marketplace/subscribe", {"model_id": MODEL_ID})
        version = call(CREATOR, "PUT", f"/models/{MODEL_ID}", MODEL_BODY)["version"]
        progress(f"notifications: {CREATOR} shipped version {version} of {MODEL_ID}")
        dg.materialize(
            [follows, subscriptions, model_versions, model_status, notification_deliveries],
            instance=dg.DagsterInstance.get(),
            resources={
                "lake": lake,
                "webhooks": WebhookSender(WebhookPolicy(loopback_http=True)),
                "mailer": None,
            },
            run_config=QUIET_RUN,
        )
        state = call(SUBSCRIBER, "GET", "/me/webhooks")
    delivered = [r for r in receiver.received if r.status == 200]
    if not delivered:
        raise RuntimeError(f"the demo's webhook received nothing: {state}")
    hit = delivered[-1]
    event = json.loads(hit.body)
    return {
        "subscriber": SUBSCRIBER,
        "endpoint": endpoint["endpoint_id"],
        "url": receiver.url,
        "event_id": event["id"],
        "idempotency_key": hit.headers.get("Idempotency-Key"),
        "notification": event["data"],
        "signature": hit.headers.get(SIGNATURE_HEADER),
        "signature_verified": verify_signature(
            hit.body, hit.headers.get(SIGNATURE_HEADER), endpoint["secret"]
        ),
        "following": FollowStore(lake).following(SUBSCRIBER),
        "endpoint_state": state,
    }
