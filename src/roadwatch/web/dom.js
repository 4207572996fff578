// The few DOM helpers every page uses. Text always goes in as text nodes, never as HTML.
export const $ = (id) => document.getElementById(id);

export const JSON_HEADERS = { "Content-Type": "application/json" };

export function text(value) {
  return document.createTextNode(String(value));
}

export function cell(row, value) {
  row.insertCell().append(text(value));
}

export function button(label, action) {
  const element = document.createElement("button");
  element.type = "button";
  element.append(text(label));
  element.addEventListener("click", action);
  return element;
}

// Run a change, then refresh; a failure is shown in `errorId` and passed to `onError`.
export async function changeShowingErrors(errorId, work, refresh, onError) {
  $(errorId).textContent = "";
  try {
    await work();
    await refresh();
  } catch (error) {
    $(errorId).textContent = error.message;
    onError(error);
  }
}
