import { AlertStream } from "./alerts.js";
import {
  createFirstUser, logIn, request, session, setupToken, Unauthorized, Unreachable,
} from "./api.js";
import { $, cell, labelColumns, text } from "./dom.js";
import { AlertHistory } from "./history.js";
import { Timeline } from "./timeline.js";
import { UsersPage } from "./users.js";
import { WatchlistsPage } from "./watchlists.js";
import { WebhooksPage } from "./webhooks.js";

const MAX_ALERTS = 200;
const STATS_EVERY_MS = 5000;
const HEALTH_EVERY_MS = 10000;
const PAGE_SIZE = 25;

let statsTimer = null;
let healthTimer = null;
let alertsSeen = 0;
const pages = { cursors: [null], index: 0, filters: {} };

const alerts = new AlertStream({
  onAlert: showAlert,
  onState: (state) => { $("connection").textContent = state; $("connection").className = `state ${state}`; },
  onUnauthorized: () => showLogin("Your session has ended; please log in again."),
});

const users = new UsersPage({
  onError: (error) => { if (error instanceof Unauthorized) showLogin("Your session has ended; please log in again."); },
});

const alertHistory = new AlertHistory({ guarded });

const timeline = new Timeline({ guarded, onWindow: () => refreshStats() });

const webhooks = new WebhooksPage({
  onError: (error) => { if (error instanceof Unauthorized) showLogin("Your session has ended; please log in again."); },
});

const watchlists = new WatchlistsPage({
  onError: (error) => { if (error instanceof Unauthorized) showLogin("Your session has ended; please log in again."); },
  onChange: (rules) => { alertHistory.setRules(rules); webhooks.setRules(rules); },
});

labelColumns(document.querySelectorAll("#dashboard .table-wrap table"));

function banner(message) {
  $("banner").textContent = message || "";
  $("banner").hidden = !message;
}

function time(iso) {
  return new Date(iso).toLocaleTimeString();
}

function showAlert(alert) {
  const item = document.createElement("li");
  item.className = "new";
  const when = document.createElement("time");
  when.dateTime = alert.timestamp;
  when.append(text(time(alert.timestamp)));
  const what = document.createElement("span");
  what.append(text(`${alert.year} ${alert.make} ${alert.model}`));
  const tag = document.createElement("span");
  tag.className = "tag";
  tag.append(text(alert.category));
  const rules = document.createElement("span");
  rules.className = "rules";
  rules.append(text((alert.rules ?? []).map((rule) => rule.name).join(", ")));
  item.append(when, what, tag, rules);
  $("alerts").prepend(item);
  while ($("alerts").children.length > MAX_ALERTS) $("alerts").lastChild.remove();
  alertsSeen += 1;
  $("alert-count").textContent = `${alertsSeen} received`;
  $("alerts-empty").hidden = true;
}

async function guarded(work) {
  try {
    await work();
  } catch (error) {
    if (error instanceof Unauthorized) showLogin("Your session has ended; please log in again.");
    else if (error instanceof Unreachable) banner("The API cannot be reached. Retrying…");
    else banner(error.message);
  }
}

async function refreshStats() {
  await guarded(async () => {
    // The counts of the window the timeline shows.
    const since = timeline.since().toISOString();
    const stats = await request(`/stats?${new URLSearchParams({ since })}`);
    $("stats-window").textContent = timeline.window.label;
    const entries = Object.entries(stats);
    const largest = entries.length ? entries[0][1] : 1;
    const total = entries.reduce((sum, [, count]) => sum + count, 0);
    $("stats-total").textContent = total.toLocaleString();
    $("stats-total").dataset.value = String(total);
    const bars = entries.map(([make, count]) => {
      const bar = document.createElement("div");
      bar.className = "bar";
      const name = document.createElement("span");
      name.append(text(make));
      const track = document.createElement("span");
      const fill = document.createElement("div");
      fill.className = "fill";
      fill.style.width = `${(100 * count) / largest}%`;
      track.append(fill);
      const number = document.createElement("span");
      number.className = "count";
      number.append(text(count.toLocaleString()));
      bar.append(name, track, number);
      return bar;
    });
    $("chart").replaceChildren(...bars);
  });
}

// The counts, and the newest detections while the first page is shown; a deeper page stays
// as it was, so that paging through it is not disturbed.
async function refreshLive() {
  await Promise.all([refreshStats(), timeline.refresh()]);
  if (pages.index === 0) await loadPage();
  await alertHistory.refresh();
}

async function refreshHealth() {
  try {
    const response = await fetch("/readyz");
    const body = await response.json();
    const down = Object.entries(body.checks).filter(([, state]) => state !== "ok");
    banner(down.length ? `Not all is well: ${down.map(([name]) => name).join(", ")} unreachable.` : "");
  } catch {
    banner("The API cannot be reached. Retrying…");
  }
}

async function loadPage() {
  await guarded(async () => {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    for (const [key, value] of Object.entries(pages.filters)) if (value) params.set(key, value);
    // The page asked for, fixed now: a live refresh and a click can overlap, and an
    // answer for a page no longer shown must not touch the page or the cursors.
    const { index, filters } = pages;
    const cursor = pages.cursors[index];
    if (cursor) params.set("cursor", cursor);
    const page = await request(`/detections?${params}`);
    if (index !== pages.index || filters !== pages.filters) return;
    const rows = page.items.map((item) => {
      const row = document.createElement("tr");
      cell(row, new Date(item.timestamp).toLocaleString());
      cell(row, item.make);
      cell(row, item.model);
      cell(row, item.year);
      cell(row, item.category);
      return row;
    });
    $("detections").replaceChildren(...rows);
    $("detections-total").textContent = page.total.toLocaleString();
    pages.cursors[index + 1] = page.next_cursor;
    $("next").disabled = !page.next_cursor;
    $("previous").disabled = index === 0;
    $("page").textContent = `page ${index + 1}`;
    banner("");
  });
}

function showLogin(hint = "") {
  stopDashboard();
  session.token = null;
  $("dashboard").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("login-view").hidden = false;
  $("login-hint").textContent = hint;
  request("/setup", { auth: false }).then((setup) => {
    const first = setup.needs_first_user;
    $("login-view").dataset.mode = first ? "first-user" : "login";
    $("login-title").textContent = first ? "Create the administrator" : "Log in";
    $("login-submit").textContent = first ? "Create and log in" : "Log in";
    if (first) {
      $("login-hint").textContent = setupToken
        ? "This roadwatch has no user yet: the first one is its administrator."
        : "This roadwatch has no user yet. Open the one-time link that `roadwatch api` "
          + "printed to create its administrator, or run `roadwatch users create --admin NAME`.";
    }
  }).catch(() => banner("The API cannot be reached. Retrying…"));
}

function stopDashboard() {
  alerts.stop();
  timeline.stop();
  clearInterval(statsTimer);
  clearInterval(healthTimer);
}

async function showDashboard() {
  const me = await request("/users/me");
  $("who").textContent = me.username;
  $("login-view").hidden = true;
  $("dashboard").hidden = false;
  $("logout").hidden = false;
  alerts.start();
  await Promise.all([
    refreshStats(), timeline.refresh(), loadPage(), refreshHealth(),
    guarded(() => users.show(me)),
    guarded(() => watchlists.show(me)).then(() => alertHistory.restart())
      .then(() => guarded(() => webhooks.show(me))),
  ]);
  statsTimer = setInterval(refreshLive, STATS_EVERY_MS);
  healthTimer = setInterval(() => {
    refreshHealth();
    guarded(() => webhooks.refresh());
  }, HEALTH_EVERY_MS);
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const username = form.get("username");
  const password = form.get("password");
  $("login-error").textContent = "";
  try {
    if ($("login-view").dataset.mode === "first-user") {
      await createFirstUser(username, password);
      // The link has done its work: it is not kept in the address bar or the history.
      window.history.replaceState(null, "", window.location.pathname);
    }
    await logIn(username, password);
    event.target.reset();
    await showDashboard();
  } catch (error) {
    $("login-error").textContent = error.message;
  }
});

$("logout").addEventListener("click", () => showLogin());

$("filters").addEventListener("submit", (event) => {
  event.preventDefault();
  pages.filters = Object.fromEntries(new FormData(event.target));
  pages.cursors = [null];
  pages.index = 0;
  loadPage();
});

$("next").addEventListener("click", () => { pages.index += 1; loadPage(); });
$("previous").addEventListener("click", () => { pages.index = Math.max(0, pages.index - 1); loadPage(); });

if (session.token) showDashboard().catch(() => showLogin());
else showLogin();
