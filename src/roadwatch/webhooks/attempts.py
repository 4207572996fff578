"""One attempt at a delivery: signed, sent, judged, dead-lettered if given up, and handed
to the recorder."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from roadwatch.runtime.retry import retry_until_done
from roadwatch.text import printable
from roadwatch.webhooks.metrics import DeliveryMetrics
from roadwatch.webhooks.ports import DeadLetterSink, Poster, Response
from roadwatch.webhooks.recorder import Recorder
from roadwatch.webhooks.retries import Outcome, RetrySchedule, is_retried
from roadwatch.webhooks.signing import signed_headers
from roadwatch.webhooks.store import Attempt
from roadwatch.webhooks.subscriptions import Delivery, Webhook

log = logging.getLogger(__name__)


class Attempter:
    def __init__(
        self,
        *,
        sender: Poster,
        schedule: RetrySchedule,
        dead_letters: DeadLetterSink,
        recorder: Recorder,
        metrics: DeliveryMetrics,
        stop: asyncio.Event,
    ) -> None:
        self._sender = sender
        self._schedule = schedule
        self._dead_letters = dead_letters
        self._recorder = recorder
        self._metrics = metrics
        self._stop = stop

    async def __call__(self, webhook: Webhook, delivery: Delivery) -> None:
        delivery.attempts += 1
        # Whole milliseconds: the precision of the cursors that page through attempts.
        now = _to_millisecond(datetime.now(UTC))
        try:
            headers = signed_headers(
                str(delivery.id),
                delivery.body,
                secrets_in_force=webhook.secrets_in_force(now),
                at=now,
            )
            response = await self._sender.post(webhook.url, delivery.body, headers)
        except Exception as error:
            # Not expected: the sender answers every failure with a Response. Tried again
            # as after any failure, rather than left unsettled, which would hold every
            # alert's offset behind it.
            log.exception("attempting delivery %s failed inside roadwatch", delivery.id)
            response = Response(None, 0.0, printable(f"{type(error).__name__}: {error}", limit=500))
        finished = datetime.now(UTC)
        if delivery.attempts == 1 and delivery.published_at is not None:
            delay = (finished - delivery.published_at).total_seconds()
            self._metrics.first_attempt_delay.observe(max(delay, 0.0))
        outcome, next_attempt_at = judge(delivery, response, finished, self._schedule)
        if outcome == Outcome.FAILED:
            reason = response.error or f"HTTP {response.status}"
            await retry_until_done(
                lambda: self._dead_letters.delivery(delivery, url=webhook.url, reason=reason),
                what="dead-lettering a delivery",
                stop=self._stop,
            )
        self._metrics.attempts.labels(outcome.value).inc()
        self._recorder.add(
            Attempt(
                delivery=delivery,
                attempted_at=now,
                outcome=outcome,
                status=response.status,
                latency_ms=response.latency_ms,
                error=response.error,
                next_attempt_at=next_attempt_at,
            )
        )


def judge(
    delivery: Delivery, response: Response, now: datetime, schedule: RetrySchedule
) -> tuple[Outcome, datetime | None]:
    """Delivered, failed for good, or to be retried, and when."""
    if response.acknowledged:
        return Outcome.DELIVERED, None
    if not is_retried(response.status) or schedule.gives_up(delivery.created_at, now):
        return Outcome.FAILED, None
    delay = schedule.delay(delivery.attempts, retry_after=response.retry_after)
    return Outcome.RETRY, now + timedelta(seconds=delay)


def _to_millisecond(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
