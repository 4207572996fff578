// The API, with the token kept in this tab's session storage: never in a URL.
const TOKEN_KEY = "roadwatch.token";

export class Unauthorized extends Error {}
export class Unreachable extends Error {}

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

export function authorization() {
  return { Authorization: `Bearer ${session.token}` };
}

export async function request(path, { method = "GET", body, headers = {}, auth = true } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method, body, headers: { ...(auth ? authorization() : {}), ...headers },
    });
  } catch {
    throw new Unreachable("the API does not answer");
  }
  if (response.status === 401 && auth) throw new Unauthorized("please log in again");
  const payload = response.headers.get("content-type")?.includes("json")
    ? await response.json() : null;
  if (!response.ok) {
    const detail = payload?.detail;
    const message = Array.isArray(detail)
      ? detail.map((problem) => `${problem.loc.at(-1)}: ${problem.msg}`).join("; ")
      : detail || `HTTP ${response.status}`;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return payload;
}

export async function logIn(username, password) {
  const form = new URLSearchParams({ username, password });
  const body = await request("/token", {
    method: "POST", body: form, auth: false,
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
  });
  session.token = body.access_token;
}

// The one-time setup token, from the link `roadwatch api` prints while there is no user.
export const setupToken = new URLSearchParams(window.location.search).get("setup");

export function createFirstUser(username, password) {
  return request("/users", {
    method: "POST", auth: false, body: JSON.stringify({ username, password }),
    headers: { "Content-Type": "application/json", "X-Setup-Token": setupToken || "" },
  });
}
