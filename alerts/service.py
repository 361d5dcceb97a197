"""Wiring for the worker, replay and the demo: config -> integrations, render options, one facade.

`AlertingService` bundles `Dispatcher` (route/group/silence/escalate) and `Notifier` (retry/send)
behind three calls the worker makes: `on_event(event)` for each `crisis.alerts` message,
`await tick()` on a timer, `reload(config)` on SIGHUP (a bad config raises ConfigError and the old
one stays). The tracker (`IncidentTracker`) lives with the detection agent, not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from crisiswatch.alerts.callbacks import action_url
from crisiswatch.alerts.clock import Clock
from crisiswatch.alerts.config import AlertingConfig
from crisiswatch.alerts.delivery import DeadLetterLog, Notifier, OptionsFor, Outcome
from crisiswatch.alerts.dispatch import Dispatcher
from crisiswatch.alerts.incidents import IncidentEvent
from crisiswatch.alerts.metrics import AlertMetrics
from crisiswatch.alerts.receivers.base import Integration, Notification
from crisiswatch.alerts.receivers.email import EmailIntegration
from crisiswatch.alerts.receivers.local import ConsoleIntegration, JsonlIntegration
from crisiswatch.alerts.receivers.pagerduty import PagerDutyIntegration
from crisiswatch.alerts.receivers.slack import SlackIntegration
from crisiswatch.alerts.receivers.webhook import WebhookIntegration
from crisiswatch.alerts.render import RenderOptions
from crisiswatch.alerts.routing import Runtime, build_runtime
from crisiswatch.alerts.silences import FileSilenceStore, SilenceStore
from crisiswatch.detectors.events import BrandProfile
from crisiswatch.detectors.settings import ConfigError


def build_integrations(config: AlertingConfig, clock: Clock) -> dict[str, list[Integration]]:
    out: dict[str, list[Integration]] = {}
    for receiver in config.receivers:
        items: list[Integration] = []
        if receiver.console is not None:
            items.append(ConsoleIntegration(receiver.console.stream))
        if receiver.jsonl is not None:
            items.append(JsonlIntegration(receiver.jsonl.path))
        if receiver.slack is not None:
            items.append(SlackIntegration(receiver.slack))
        if receiver.email is not None:
            items.append(EmailIntegration(receiver.email))
        if receiver.pagerduty is not None:
            items.append(PagerDutyIntegration(receiver.pagerduty))
        if receiver.webhook is not None:
            items.append(WebhookIntegration(receiver.webhook, clock))
        out[receiver.name] = items
    return out


def render_options_factory(
    config: AlertingConfig, clock: Clock, brands: Mapping[str, BrandProfile] | None = None
) -> OptionsFor:
    """Per notification: the brand's language and zone, playbooks, signed action links."""
    brands = dict(brands or {})
    receivers = {r.name: r for r in config.receivers}

    def options_for(notification: Notification) -> RenderOptions:
        event = notification.event
        profile = brands.get(event.brand)
        receiver = receivers.get(notification.receiver)
        lang = (
            (receiver.lang if receiver else None)
            or (profile.lang if profile else None)
            or event.labels.get("lang")
        )
        now_s = clock.now()
        person = notification.recipients[0].id if len(notification.recipients) == 1 else None

        def link(action: str) -> str | None:
            return action_url(
                config.callback, event.incident_id, action, now_s, person, nonce=notification.id[:12]
            )

        on_call = ", ".join(r.name or r.id for r in notification.recipients)
        return RenderOptions(
            playbooks=config.playbooks,
            lang=lang if lang in ("en", "zh") else "en",
            time_zone=profile.time_zone if profile else "UTC",
            ack_url=link("acknowledge"),
            resolve_url=link("resolve"),
            false_alarm_url=link("false_alarm"),
            on_call=f"On call: {on_call}" if on_call else None,
        )

    return options_for


class AlertingService:
    def __init__(
        self,
        config: AlertingConfig,
        *,
        clock: Clock,
        registry: CollectorRegistry | None = None,
        brands: Mapping[str, BrandProfile] | None = None,
        silences: SilenceStore | None = None,
        integrations: Mapping[str, list[Integration]] | None = None,
        metrics: AlertMetrics | None = None,
        seed: int = 0,
    ) -> None:
        self.clock = clock
        self.brands = dict(brands or {})
        self.runtime: Runtime = build_runtime(config)
        if silences is None and config.silences_store != "file":
            # Falling back to a local file would silently stop sharing silences between workers.
            raise ConfigError(
                "silences_store",
                config.silences_store,
                "a silence store passed in by the worker (crisiswatch.streams.silences.open_silence_store)",
            )
        self.silences = silences if silences is not None else FileSilenceStore(config.silences_path)
        self.dispatcher = Dispatcher(self.runtime, self.silences)
        # One AlertMetrics per registry: services of several partitions in one worker share it.
        self.metrics = metrics if metrics is not None else AlertMetrics(registry)
        self.notifier = Notifier(
            integrations if integrations is not None else build_integrations(config, clock),
            clock=clock,
            config=config.delivery,
            metrics=self.metrics,
            options_for=render_options_factory(config, clock, self.brands),
            dead_letters=DeadLetterLog(config.delivery.dead_letter_path),
            seed=seed,
        )

    @property
    def config(self) -> AlertingConfig:
        return self.runtime.config

    def on_event(self, event: IncidentEvent) -> list[Notification]:
        notifications = self.dispatcher.submit(event, self.clock.now())
        for notification in notifications:
            self.notifier.submit(notification)
        return notifications

    async def tick(self) -> list[Outcome]:
        for notification in self.dispatcher.tick(self.clock.now()):
            self.notifier.submit(notification)
        return await self.notifier.deliver_due()

    def tick_sync(self) -> list[Outcome]:
        """Replay / demo path (console and JSONL receivers only)."""
        for notification in self.dispatcher.tick(self.clock.now()):
            self.notifier.submit(notification)
        return self.notifier.deliver_sync()

    def next_wakeup_s(self) -> float | None:
        times = [t for t in (self.dispatcher.next_wakeup_s(), self.notifier.next_due_s()) if t is not None]
        return min(times) if times else None

    def reload(self, config: AlertingConfig | Mapping[str, Any]) -> None:
        """SIGHUP: build the new runtime first; on ConfigError nothing changes (the caller logs it)."""
        runtime = build_runtime(config)
        integrations = build_integrations(runtime.config, self.clock)
        self.runtime = runtime
        self.dispatcher.set_runtime(runtime)
        self.notifier.integrations = {k: list(v) for k, v in integrations.items()}
        self.notifier.options_for = render_options_factory(runtime.config, self.clock, self.brands)
        self.notifier.config = runtime.config.delivery

    def state(self) -> dict[str, Any]:
        return {"dispatcher": self.dispatcher.state(), "notifier": self.notifier.state()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.dispatcher.load_state(state.get("dispatcher", {}))
        self.notifier.load_state(state.get("notifier", {}))
