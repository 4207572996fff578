// The alert history, newest first, a page at a time, for every rule or one.
import { request } from "./api.js";
import { $, cell } from "./dom.js";

const PAGE_SIZE = 20;

export class AlertHistory {
  constructor({ guarded }) {
    this.guarded = guarded;
    this.cursors = [null];
    this.index = 0;
    $("history-rule").addEventListener("change", () => this.restart());
    $("history-next").addEventListener("click", () => { this.index += 1; this.load(); });
    $("history-previous").addEventListener("click", () => {
      this.index = Math.max(0, this.index - 1);
      this.load();
    });
  }

  // The rules to choose from, keeping the one chosen if it still exists.
  setRules(rules) {
    const chosen = $("history-rule").value;
    const every = document.createElement("option");
    every.value = "";
    every.append(document.createTextNode("every rule"));
    const options = rules.map((rule) => {
      const option = document.createElement("option");
      option.value = rule.id;
      option.append(document.createTextNode(rule.name));
      return option;
    });
    $("history-rule").replaceChildren(every, ...options);
    if (rules.some((rule) => rule.id === chosen)) $("history-rule").value = chosen;
  }

  restart() {
    this.cursors = [null];
    this.index = 0;
    return this.load();
  }

  // The newest page again while it is shown; a deeper page stays as it was.
  refresh() {
    return this.index === 0 ? this.load() : Promise.resolve();
  }

  load() {
    return this.guarded(async () => {
      const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
      const rule = $("history-rule").value;
      if (rule) params.set("rule", rule);
      const cursor = this.cursors[this.index];
      if (cursor) params.set("cursor", cursor);
      const page = await request(`/alerts/history?${params}`);
      const rows = page.items.map((alert) => {
        const row = document.createElement("tr");
        cell(row, new Date(alert.timestamp).toLocaleString());
        cell(row, `${alert.year} ${alert.make} ${alert.model}`);
        cell(row, alert.category);
        cell(row, alert.rules.map((matched) => matched.name).join(", "));
        return row;
      });
      $("history").replaceChildren(...rows);
      this.cursors[this.index + 1] = page.next_cursor;
      $("history-next").disabled = !page.next_cursor;
      $("history-previous").disabled = this.index === 0;
      $("history-page").textContent = `page ${this.index + 1}`;
    });
  }
}
