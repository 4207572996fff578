// The users page, for administrators: list, add, disable or enable, delete, set a password.
import { request } from "./api.js";
import { $, button, cell, changeShowingErrors, JSON_HEADERS } from "./dom.js";

export class UsersPage {
  constructor({ onError }) {
    this.onError = onError;
    this.me = null;
    $("add-user").addEventListener("submit", (event) => this.add(event));
    $("set-password").addEventListener("submit", (event) => this.setPassword(event));
  }

  async show(me) {
    this.me = me;
    $("users-card").hidden = !me.is_admin;
    if (me.is_admin) await this.refresh();
  }

  act(work) {
    return changeShowingErrors("users-error", work, () => this.refresh(), this.onError);
  }

  async refresh() {
    const users = await request("/users");
    const rows = users.map((user) => {
      const row = document.createElement("tr");
      row.dataset.username = user.username;
      cell(row, user.username);
      cell(row, user.is_admin ? "administrator" : "user");
      cell(row, new Date(user.created_at).toLocaleDateString());
      cell(row, user.disabled ? "disabled" : "active");
      const actions = row.insertCell();
      if (user.id !== this.me.id) {
        actions.append(
          button(user.disabled ? "Enable" : "Disable", () => this.act(() => request(`/users/${user.id}`, {
            method: "PATCH", body: JSON.stringify({ disabled: !user.disabled }), headers: JSON_HEADERS,
          }))),
          button("Delete", () => this.act(() => request(`/users/${user.id}`, { method: "DELETE" }))),
        );
      }
      return row;
    });
    $("users").replaceChildren(...rows);
    const choices = users.filter((user) => user.id !== this.me.id).map((user) => {
      const option = document.createElement("option");
      option.value = user.id;
      option.append(document.createTextNode(user.username));
      return option;
    });
    $("password-user").replaceChildren(...choices);
  }

  async add(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    await this.act(async () => {
      await request("/users", {
        method: "POST", headers: JSON_HEADERS,
        body: JSON.stringify({ username: form.get("username"), password: form.get("password") }),
      });
      event.target.reset();
    });
  }

  async setPassword(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    await this.act(async () => {
      await request(`/users/${form.get("user")}/password`, {
        method: "PUT", headers: JSON_HEADERS,
        body: JSON.stringify({ new_password: form.get("password") }),
      });
      event.target.reset();
    });
  }
}
