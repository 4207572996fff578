// The watchlist rules: every user sees them; administrators add, edit, enable, disable and
// delete them. A change reaches every indexer within a second.
import { request } from "./api.js";
import { $, button, cell, changeShowingErrors, JSON_HEADERS } from "./dom.js";

const FIELDS = ["name", "description", "categories", "make", "model", "year_from", "year_to"];

// What a rule matches, in words: "SUV, Pickup · Jeep Wrangler · 2000–2010".
export function describe(rule) {
  const parts = [];
  if (rule.categories.length) parts.push(rule.categories.join(", "));
  const vehicle = [rule.make, rule.model].filter(Boolean).join(" ");
  if (vehicle) parts.push(vehicle);
  if (rule.year_from !== null || rule.year_to !== null) {
    parts.push(`${rule.year_from ?? "…"}–${rule.year_to ?? "…"}`);
  }
  return parts.join(" · ");
}

// The form's values as a rule body: empty fields are left out when adding, cleared (null)
// when editing, so that an edit can remove a field.
function body(form, { editing }) {
  const values = {};
  for (const field of FIELDS) {
    const raw = String(form.get(field) ?? "").trim();
    let value = raw;
    if (field === "categories") value = raw.split(",").map((part) => part.trim()).filter(Boolean);
    else if (field.startsWith("year_")) value = raw ? Number(raw) : null;
    else if (!raw && field !== "name" && field !== "description") value = null;
    if (!editing && (value === null || (Array.isArray(value) && !value.length))) continue;
    values[field] = value;
  }
  return values;
}

export class WatchlistsPage {
  constructor({ onError, onChange }) {
    this.onError = onError;
    this.onChange = onChange;
    this.rules = [];
    this.editing = null;
    $("rule-form").addEventListener("submit", (event) => this.save(event));
    $("rule-cancel").addEventListener("click", () => this.edit(null));
  }

  async show(me) {
    this.me = me;
    $("rule-form").hidden = !me.is_admin;
    await this.refresh();
  }

  act(work) {
    return changeShowingErrors("rules-error", work, () => this.refresh(), this.onError);
  }

  async refresh() {
    const page = await request("/watchlists?limit=1000");
    this.rules = page.items;
    const rows = this.rules.map((rule) => {
      const row = document.createElement("tr");
      row.dataset.rule = rule.name;
      cell(row, rule.name);
      cell(row, describe(rule));
      cell(row, rule.enabled ? "enabled" : "disabled");
      cell(row, rule.updated_by ?? rule.created_by ?? "system");
      const actions = row.insertCell();
      if (this.me.is_admin) {
        actions.append(
          button(rule.enabled ? "Disable" : "Enable", () => this.act(() => request(`/watchlists/${rule.id}`, {
            method: "PATCH", headers: JSON_HEADERS, body: JSON.stringify({ enabled: !rule.enabled }),
          }))),
          button("Edit", () => this.edit(rule)),
          button("Delete", () => this.act(() => request(`/watchlists/${rule.id}`, { method: "DELETE" }))),
        );
      }
      return row;
    });
    $("rules").replaceChildren(...rows);
    $("rules-total").textContent = `${page.total} rule${page.total === 1 ? "" : "s"}`;
    this.onChange(this.rules);
  }

  edit(rule) {
    this.editing = rule;
    const form = $("rule-form");
    form.reset();
    $("rule-submit").textContent = rule ? "Save rule" : "Add rule";
    $("rule-cancel").hidden = !rule;
    if (!rule) return;
    for (const field of FIELDS) {
      const value = rule[field];
      form.elements[field].value = Array.isArray(value) ? value.join(", ") : value ?? "";
    }
  }

  async save(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    const editing = this.editing;
    await this.act(async () => {
      await request(editing ? `/watchlists/${editing.id}` : "/watchlists", {
        method: editing ? "PATCH" : "POST",
        headers: JSON_HEADERS,
        body: JSON.stringify(body(form, { editing: Boolean(editing) })),
      });
      this.edit(null);
    });
  }
}
