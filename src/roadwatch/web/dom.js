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

// Each body cell of these tables carries its column's name (data-label), kept as rows
// change: a phone shows a row as a card of labelled lines (style.css).
export function labelColumns(tables) {
  for (const table of tables) {
    const names = [...table.querySelectorAll("thead th")].map((th) => th.textContent);
    const label = () => {
      for (const row of table.tBodies[0].rows) {
        [...row.cells].forEach((cell, i) => { cell.dataset.label = names[i] ?? ""; });
      }
    };
    new MutationObserver(label).observe(table.tBodies[0], { childList: true });
    label();
  }
}
