// The webhooks page, for administrators: each subscription's health and last failures,
// subscribe, test, enable or disable, rotate the secret, remove.
import { request } from "./api.js";
import { $, button, cell, changeShowingErrors, JSON_HEADERS, text } from "./dom.js";

const FAILURES_SHOWN = 5;

export class WebhooksPage {
  constructor({ onError }) {
    this.onError = onError;
    this.me = null;
    this.ruleNames = new Map();
    $("webhook-form").addEventListener("submit", (event) => this.add(event));
  }

  async show(me) {
    this.me = me;
    $("webhooks-card").hidden = !me.is_admin;
    if (me.is_admin) await this.refresh();
  }

  // The rules a subscription may be narrowed to, kept in step with the watchlists page.
  setRules(rules) {
    this.ruleNames = new Map(rules.map((rule) => [rule.id, rule.name]));
    const options = rules.map((rule) => new Option(rule.name, rule.id));
    $("webhook-rules").replaceChildren(...options);
  }

  act(work) {
    return changeShowingErrors("webhooks-error", work, () => this.refresh(), this.onError);
  }

  async refresh() {
    if (!this.me?.is_admin) return;
    const webhooks = await request("/webhooks");
    const failures = await Promise.all(webhooks.map((webhook) => this.lastFailures(webhook)));
    const rows = webhooks.map((webhook, index) => this.row(webhook, failures[index]));
    $("webhooks").replaceChildren(...rows);
  }

  async lastFailures(webhook) {
    if (!webhook.health.last_failure_at) return [];
    const page = await request(`/webhooks/${webhook.id}/deliveries?limit=50`);
    return page.items.filter((attempt) => attempt.outcome !== "delivered").slice(0, FAILURES_SHOWN);
  }

  row(webhook, failures) {
    const row = document.createElement("tr");
    row.dataset.webhook = webhook.url;
    cell(row, webhook.description ? `${webhook.url} (${webhook.description})` : webhook.url);
    cell(row, webhook.rules === null
      ? "every alert"
      : webhook.rules.map((id) => this.ruleNames.get(id) ?? "deleted rule").join(", "));
    const health = webhook.health;
    const state = webhook.enabled ? health.status : "disabled";
    const status = row.insertCell();
    const tag = document.createElement("span");
    tag.className = `state ${state}`;
    tag.append(text(health.pending ? `${state}, ${health.pending} waiting` : state));
    status.append(tag);
    const failed = row.insertCell();
    failed.className = "failures";
    for (const attempt of failures) {
      const line = document.createElement("div");
      const when = new Date(attempt.attempted_at).toLocaleTimeString();
      line.append(text(`${when}: ${attempt.error ?? `HTTP ${attempt.status}`}`));
      failed.append(line);
    }
    const actions = row.insertCell();
    actions.append(
      button("Send test", () => this.act(() => request(`/webhooks/${webhook.id}/test`, { method: "POST" }))),
      button(webhook.enabled ? "Disable" : "Enable", () => this.act(() => request(`/webhooks/${webhook.id}`, {
        method: "PATCH", headers: JSON_HEADERS, body: JSON.stringify({ enabled: !webhook.enabled }),
      }))),
      button("Rotate secret", () => this.act(async () => {
        const rotated = await request(`/webhooks/${webhook.id}/secret`, { method: "POST" });
        this.showSecret(webhook.url, rotated.secret);
      })),
      button("Delete", () => this.act(() => request(`/webhooks/${webhook.id}`, { method: "DELETE" }))),
    );
    return row;
  }

  // A secret is shown once, by the answer that made it: copy it now.
  showSecret(url, secret) {
    $("webhook-secret").hidden = false;
    $("webhook-secret").replaceChildren(text(`Signing secret for ${url} (shown once): `), code(secret));
  }

  async add(event) {
    event.preventDefault();
    const form = event.target;
    const rules = [...$("webhook-rules").selectedOptions].map((option) => option.value);
    const body = {
      url: form.elements.url.value.trim(),
      description: form.elements.description.value.trim(),
      rules: rules.length ? rules : null,
    };
    await this.act(async () => {
      const created = await request("/webhooks", {
        method: "POST", headers: JSON_HEADERS, body: JSON.stringify(body),
      });
      this.showSecret(created.url, created.secret);
      form.reset();
    });
  }
}

function code(value) {
  const element = document.createElement("code");
  element.append(text(value));
  return element;
}
