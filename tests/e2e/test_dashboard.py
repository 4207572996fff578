"""The dashboard in headless Chromium, against the real stack: what an operator sees."""

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from aiohttp import web
from playwright.async_api import FloatRect, Page, async_playwright, expect

from roadwatch.bootstrap.stores import detection_store
from tests.helpers.kafka import send_values, stream_settings
from tests.helpers.ports import free_port
from tests.helpers.processes import (
    TEST_SETUP_TOKEN,
    ApiProcess,
    deliverer_running,
    indexer_running,
    start_api,
)
from tests.helpers.receivers import receiver_running
from tests.helpers.servers import Servers, create_topic, fresh_postgres_database, unique
from tests.helpers.stored import stored_at_least
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.browser]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# `make screenshots` sets it to docs/screenshots, where the README shows them.
SCREENSHOTS = Path(os.environ.get("ROADWATCH_SCREENSHOTS", ARTIFACTS))
# A desktop, a laptop, a phone.
SCREENS = {"desktop": (1440, 900), "laptop": (1024, 768), "phone": (390, 844)}
# What overflows a card, or a card the page: each problem named.
OVERFLOWS = """() => {
  const problems = [];
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth > width + 1) problems.push("the page scrolls sideways");
  for (const card of document.querySelectorAll("#dashboard .card")) {
    if (card.offsetParent === null) continue;
    const box = card.getBoundingClientRect();
    if (box.left < -1 || box.right > width + 1) problems.push(`${card.id} leaves the screen`);
    if (card.scrollWidth > card.clientWidth + 1) problems.push(`${card.id} overflows`);
    for (const wrap of card.querySelectorAll(".table-wrap")) {
      if (wrap.scrollWidth > wrap.clientWidth + 1) problems.push(`${card.id}: its table scrolls`);
    }
    for (const control of card.querySelectorAll("button, input, select")) {
      if (control.offsetParent === null) continue;
      const at = control.getBoundingClientRect();
      if (at.left < box.left - 1 || at.right > box.right + 1) {
        problems.push(`${card.id}: ${control.outerHTML.slice(0, 60)} sticks out`);
      }
    }
  }
  return problems;
}"""
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ADMIN, PASSWORD = "operator", "watch the road closely"
SEDAN = {"Year": 2012, "Make": "Honda", "Model": "Civic", "Category": "Sedan"}


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = await browser.new_context(viewport={"width": 1366, "height": 900})
        yield await context.new_page()
        await browser.close()


@pytest.mark.slow
async def test_an_operator_logs_in_sees_a_live_alert_the_counts_and_pages_detections(
    servers: Servers, page: Page, tmp_path: Path
) -> None:
    async with fresh_postgres_database(servers) as database:
        settings = (await stream_settings(servers, store_url=database)).model_copy(
            update={
                "users_db_url": database,
                "webhooks_dead_letter_topic": await create_topic(servers.kafka, partitions=1),
                "webhook_allowed_networks": "127.0.0.1/32",
            }
        )
        api: ApiProcess = await asyncio.to_thread(
            start_api, settings, port=free_port(), log=tmp_path / "api.log"
        )
        store = detection_store(database)
        await store.open()
        try:
            async with (
                indexer_running(settings, group=unique("group")),
                deliverer_running(settings),
            ):
                await send_values(
                    settings.kafka_broker_url,
                    settings.detections_topic,
                    [orjson.dumps({**SEDAN, "Year": 1995 + i % 25}) for i in range(60)],
                )
                await eventually(lambda: stored_at_least(store, 60), within=60, what="60 stored")
                await _watch(page, api, settings.kafka_broker_url, settings.detections_topic)
        finally:
            await store.close()
            api.stop()


async def _watch(page: Page, api: ApiProcess, broker: str, topic: str) -> None:
    await page.goto(f"{api.url}/?setup={TEST_SETUP_TOKEN}")
    await expect(page.locator("#login-title")).to_have_text("Create the administrator")
    await page.fill("input[name=username]", ADMIN)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("#login-submit")
    await expect(page.locator("#dashboard")).to_be_visible()
    await expect(page.locator("#who")).to_have_text(ADMIN)
    await expect(page.locator("#connection")).to_have_text("live", timeout=10_000)

    model = f"E2E {uuid.uuid4().hex[:8]}"
    suspicious = {"Year": 2021, "Make": "Jeep", "Model": model, "Category": "SUV"}
    await send_values(broker, topic, [orjson.dumps(suspicious)])
    newest = page.locator("#alerts li").first
    await expect(newest).to_contain_text(model, timeout=10_000)
    await expect(newest).to_contain_text("SUV")

    token = await page.evaluate("sessionStorage.getItem('roadwatch.token')")
    assert token
    assert token not in page.url
    async with httpx.AsyncClient(base_url=api.url) as client:
        stats = (await client.get("/stats", headers={"Authorization": f"Bearer {token}"})).json()
    total = sum(stats.values())
    assert total == 61
    await expect(page.locator("#stats-total")).to_have_attribute(
        "data-value", str(total), timeout=15_000
    )
    await expect(page.locator("#chart .bar")).to_have_count(len(stats))
    await _follow_the_timeline(page, total)

    await expect(page.locator("#detections-total")).to_have_text(str(total), timeout=15_000)
    rows = page.locator("#detections tr")
    await expect(rows).to_have_count(25)
    first_page = await rows.all_inner_texts()
    await page.click("#next")
    await expect(page.locator("#page")).to_have_text("page 2")
    await expect(rows).to_have_count(25)
    assert await rows.all_inner_texts() != first_page
    await page.click("#next")
    await expect(rows).to_have_count(11)
    await expect(page.locator("#next")).to_be_disabled()
    await page.click("#previous")
    await page.click("#previous")
    await expect(page.locator("#page")).to_have_text("page 1")
    assert await rows.all_inner_texts() == first_page

    await page.fill("#filters input[name=make]", "Jeep")
    await page.click("#filters button")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text(model)

    await _manage_users(page)
    await _watch_a_rule(page, broker, topic)
    await _subscribe_webhooks(page)
    await page.fill("#filters input[name=make]", "")
    await page.click("#filters button")
    await _fits_every_screen(page)
    assert re.match(r"^http://127\.0\.0\.1:\d+/$", page.url)
    await _swagger_all_the_way(page, api.url)


async def _follow_the_timeline(page: Page, total: int) -> None:
    """The chart draws the last 24 hours by hour, then the last hour by minute when chosen,
    and the per-make counts follow the window."""
    chart = page.locator("#timeline")
    await expect(chart.locator("canvas")).to_have_count(1)
    await expect(chart).to_have_attribute("data-bucket", "hour")
    await expect(chart).to_have_attribute("data-buckets", "24")
    await expect(chart).to_have_attribute("data-detections", str(total), timeout=15_000)
    # The alert is recorded by a later processor than the detection's count, so it may
    # show in a later refresh than the detections do.
    await expect(chart).to_have_attribute("data-alerts", re.compile(r"^[1-9]\d*$"), timeout=15_000)

    await page.select_option("#window", "hour")
    await expect(chart).to_have_attribute("data-bucket", "minute")
    await expect(chart).to_have_attribute("data-buckets", "60")
    await expect(chart).to_have_attribute("data-detections", str(total), timeout=15_000)
    await expect(page.locator("#stats-window")).to_have_text("last hour")
    await expect(page.locator("#stats-total")).to_have_attribute("data-value", str(total))
    await expect(page.locator("#timeline-label")).to_have_text("last hour, per minute")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.locator("#timeline-card").screenshot(path=str(ARTIFACTS / "timeline.png"))

    await page.select_option("#window", "week")
    await expect(chart).to_have_attribute("data-buckets", "168")
    await expect(chart).to_have_attribute("data-detections", str(total), timeout=15_000)
    await page.select_option("#window", "day")


async def _manage_users(page: Page) -> None:
    """The administrator adds a user, disables them, sets their password, deletes them."""
    users = page.locator("#users-card")
    await expect(users).to_be_visible()
    await expect(users.locator("tbody tr")).to_have_count(1)
    await page.fill("#add-user input[name=username]", "night-shift")
    await page.fill("#add-user input[name=password]", "password1234")
    await page.click("#add-user button")
    await expect(page.locator("#users-error")).to_contain_text("most common")
    await page.fill("#add-user input[name=password]", "a quiet night on the road")
    await page.click("#add-user button")
    added = users.locator("tr[data-username=night-shift]")
    await expect(added).to_contain_text("active")
    await added.get_by_role("button", name="Disable").click()
    await expect(added).to_contain_text("disabled")
    await page.select_option("#password-user", label="night-shift")
    await page.fill("#set-password input[name=password]", "a brand new night phrase")
    await page.click("#set-password button")
    # The form is emptied once the password is set: only then is the user deleted.
    await expect(page.locator("#set-password input[name=password]")).to_have_value("")
    await expect(page.locator("#users-error")).to_have_text("")
    await added.get_by_role("button", name="Delete").click()
    await expect(users.locator("tbody tr")).to_have_count(1)


async def _watch_a_rule(page: Page, broker: str, topic: str) -> None:
    """The administrator adds a rule, sees its first alert arrive named, and in the history;
    then edits, disables and deletes it."""
    card = page.locator("#watchlists-card")
    await expect(card.locator("tr[data-rule=suspicious-vehicle]")).to_contain_text("enabled")
    await page.fill("#rule-form input[name=name]", "Civics of 2012")
    await page.fill("#rule-form input[name=make]", "honda")
    await page.fill("#rule-form input[name=model]", "Civic")
    await page.fill("#rule-form input[name=year_from]", "2013")
    await page.fill("#rule-form input[name=year_to]", "2012")
    await page.click("#rule-submit")
    await expect(page.locator("#rules-error")).to_contain_text("after year_to")
    await page.fill("#rule-form input[name=year_from]", "2012")
    await page.click("#rule-submit")
    row = card.locator('tr[data-rule="Civics of 2012"]')
    await expect(row).to_contain_text("honda Civic · 2012–2012")
    await expect(page.locator("#rules-error")).to_have_text("")

    # The rule reaches the indexer within moments; a Civic sent until then may pass unjudged.
    newest = page.locator("#alerts li").first
    for _attempt in range(20):
        await send_values(broker, topic, [orjson.dumps(SEDAN)])
        try:
            await expect(newest).to_contain_text("Civics of 2012", timeout=1_000)
            break
        except AssertionError:
            continue
    await expect(newest).to_contain_text("2012 Honda Civic")
    await page.select_option("#history-rule", label="Civics of 2012")
    await expect(page.locator("#history tr").first).to_contain_text("Civics of 2012")

    await row.get_by_role("button", name="Disable").click()
    await expect(row).to_contain_text("disabled")
    await row.get_by_role("button", name="Edit").click()
    await expect(page.locator("#rule-form input[name=make]")).to_have_value("honda")
    await page.fill("#rule-form input[name=name]", "Old Civics")
    await page.fill("#rule-form input[name=year_to]", "")
    await page.click("#rule-submit")
    edited = card.locator('tr[data-rule="Old Civics"]')
    await expect(edited).to_contain_text("honda Civic · 2012–…")
    await expect(edited).to_contain_text("disabled")
    await edited.get_by_role("button", name="Delete").click()
    await expect(card.locator("tbody tr")).to_have_count(1)


async def _subscribe_webhooks(page: Page) -> None:
    """The administrator subscribes two receivers, sees the secret once, sends test events,
    and sees one healthy and the other failing with its error; an internal URL is refused."""

    async def gone(_number: int, _request: web.Request) -> int:
        return 410

    card = page.locator("#webhooks-card")
    await expect(card).to_be_visible()
    async with receiver_running() as working, receiver_running(gone) as refusing:
        await page.fill("#webhook-form input[name=url]", "http://10.0.0.1/hook")
        await page.click("#webhook-form button")
        await expect(page.locator("#webhooks-error")).to_contain_text("internal address")
        for receiver in (working, refusing):
            await page.fill("#webhook-form input[name=url]", receiver.url)
            await page.click("#webhook-form button")
            # The secret shown is this subscription's once the line names its URL.
            await expect(page.locator("#webhook-secret")).to_contain_text(receiver.url)
            secret = page.locator("#webhook-secret code")
            await expect(secret).to_have_text(re.compile("^whsec_"))
            receiver.secrets.append(await secret.inner_text())
            row = card.locator(f'tr[data-webhook="{receiver.url}"]')
            await expect(row).to_contain_text("new")
            await row.get_by_role("button", name="Send test").click()
        healthy = card.locator(f'tr[data-webhook="{working.url}"]')
        failing = card.locator(f'tr[data-webhook="{refusing.url}"]')
        await expect(healthy).to_contain_text("healthy", timeout=20_000)
        await expect(failing).to_contain_text("failing", timeout=20_000)
        await expect(failing.locator(".failures")).to_contain_text("HTTP 410")
    # Alerts of the steps before may reach the new subscriptions too; the test event must.
    assert "webhook.test" in [r.event["type"] for r in working.requests]
    assert all(r.signed_with for r in working.requests + refusing.requests)
    await failing.get_by_role("button", name="Delete").click()
    await expect(card.locator("tbody tr")).to_have_count(1)


async def _fits_every_screen(page: Page) -> None:
    """On a desktop and a laptop the panels share the width; on a phone they stack. No
    panel, table or control sticks out at any of them."""
    await asyncio.to_thread(SCREENSHOTS.mkdir, parents=True, exist_ok=True)
    for name, (width, height) in SCREENS.items():
        await page.set_viewport_size({"width": width, "height": height})
        await expect(page.locator("#timeline canvas")).to_have_count(1)
        # Laid out again, and the chart fitted to its card.
        await page.wait_for_function(
            "() => Math.abs(document.querySelector('#timeline canvas').getBoundingClientRect()"
            ".width - document.querySelector('#timeline').clientWidth) < 2"
        )
        assert await page.evaluate(OVERFLOWS) == [], name
        timeline, alerts, stats, detections = [
            await _box(page, f"#{card}-card")
            for card in ("timeline", "alerts", "stats", "detections")
        ]
        if name == "desktop":
            assert _side_by_side(timeline, alerts), name
            assert _side_by_side(stats, detections), name
        elif name == "laptop":
            assert _side_by_side(alerts, stats), name
            assert timeline["width"] > 2 * alerts["width"], name
        else:
            assert {round(b["x"]) for b in (timeline, alerts, stats, detections)} == {
                round(timeline["x"])
            }, name
            assert alerts["y"] < timeline["y"] < stats["y"] < detections["y"], name
        await page.screenshot(path=str(SCREENSHOTS / f"dashboard-{width}.png"), full_page=True)
    await _legend_follows_the_cursor(page)


async def _box(page: Page, selector: str) -> FloatRect:
    box = await page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not shown"
    return box


def _side_by_side(left: FloatRect, right: FloatRect) -> bool:
    return left["y"] == right["y"] and left["x"] + left["width"] <= right["x"]


async def _legend_follows_the_cursor(page: Page) -> None:
    """The timeline's legend gives the values under the cursor, or nothing."""
    await page.set_viewport_size({"width": 1440, "height": 900})
    legend = page.locator("#timeline .u-legend")
    await page.mouse.move(0, 0)
    assert "--" not in await legend.inner_text()
    plot = page.locator("#timeline .u-over")
    box = await _box(page, "#timeline .u-over")
    # Over the last bucket, the current hour's: the detections of this test.
    await plot.hover(position={"x": box["width"] - 3, "y": box["height"] / 2})
    await expect(legend.locator(".u-series").nth(1).locator(".u-value")).to_have_text(
        re.compile(r"^\d[\d,]*$")
    )


async def _swagger_all_the_way(page: Page, base: str) -> None:
    """/docs loads nothing from elsewhere, logs in with the password flow (Authorize), and
    calls /detections."""
    elsewhere: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(base) else elsewhere.append(r.url))
    await page.goto(f"{base}/docs")
    await page.locator("button.authorize").first.click()
    await page.fill("#oauth_username", ADMIN)
    await page.fill("#oauth_password", PASSWORD)
    await page.locator(".auth-btn-wrapper button.authorize").click()
    await expect(page.locator(".auth-container")).to_contain_text("Authorized")
    await page.locator(".auth-btn-wrapper button.btn-done").click()
    operation = page.locator(".opblock-get").filter(
        has=page.locator('.opblock-summary-path[data-path="/detections"]')
    )
    await operation.locator(".opblock-summary").click()
    await operation.locator("button.try-out__btn").click()
    await operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status")
    await expect(status.first).to_have_text("200")
    body = operation.locator(".live-responses-table .response-col_description pre").first
    await expect(body).to_contain_text(re.compile(r'"total": [1-9]\d*'))
    assert elsewhere == []
