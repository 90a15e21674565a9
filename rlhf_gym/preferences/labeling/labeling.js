// The labeling page: ask the server for this labeler's next comparison, send each answer, show
// progress. The server decides everything (leases, display order, what is next); the page only
// shows its views. Text goes in with textContent, never as HTML, so a response cannot script.
"use strict";

const KEYS = { a: "left", b: "right", t: "tie", s: "skip" };
const NAME_KEY = "rlhf-gym-labeler";
const token = new URLSearchParams(location.search).get("token");
const byId = (id) => document.getElementById(id);
let labeler = localStorage.getItem(NAME_KEY);
let current = null; // the comparison on screen
let shownAt = 0; // when it appeared, for the seconds spent on it

async function call(path, body = {}) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(path, {
    method: "POST",
    headers,
    body: JSON.stringify({ labeler, ...body }),
  });
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = Array.isArray(payload.detail)
      ? payload.detail.map((error) => error.msg).join("; ")
      : payload.detail;
    const error = new Error(detail || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return payload;
}

function show(view) {
  current = view.comparison;
  const { yours, done, total } = view.progress;
  byId("progress").textContent = `${yours} labeled by you · ${done} of ${total} comparisons done`;
  byId("undo").disabled = !view.can_undo;
  byId("task").hidden = !current;
  byId("done").hidden = Boolean(current);
  if (current) {
    byId("prompt").textContent = current.prompt;
    byId("left").textContent = current.left;
    byId("right").textContent = current.right;
    document.body.dataset.comparison = current.id;
    shownAt = performance.now();
  } else {
    delete document.body.dataset.comparison;
  }
}

// One request at a time: a second key press while one is in flight is dropped, so a held or
// doubled key never labels a comparison the labeler has not seen yet.
async function act(path, body) {
  if (document.body.dataset.busy === "1") return;
  document.body.dataset.busy = "1";
  byId("status").textContent = "";
  try {
    show(await call(path, body));
  } catch (error) {
    byId("status").textContent = error.message;
    if (path === "/api/next" && error.status === 422) askName(); // a name the server refuses
    else await call("/api/next").then(show, () => {}); // e.g. the lease went to someone else
  } finally {
    document.body.dataset.busy = "0";
  }
}

function choose(choice) {
  if (!current) return;
  const seconds = (performance.now() - shownAt) / 1000;
  act("/api/label", { id: current.id, choice, seconds });
}

function start(name) {
  labeler = name;
  localStorage.setItem(NAME_KEY, name);
  byId("labeler-name").textContent = name;
  byId("name").blur(); // the keys are answers from now on, not typing
  byId("name-form").hidden = true;
  byId("who").hidden = false;
  byId("controls").hidden = false;
  act("/api/next");
}

function askName() {
  labeler = null;
  current = null;
  localStorage.removeItem(NAME_KEY);
  for (const id of ["who", "task", "done", "controls"]) byId(id).hidden = true;
  byId("name-form").hidden = false;
  byId("name").focus();
}

document.addEventListener("keydown", (event) => {
  if (!labeler || event.repeat || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target instanceof HTMLInputElement) return;
  const key = event.key.toLowerCase();
  if (key in KEYS) choose(KEYS[key]);
  else if (key === "u") act("/api/undo");
  else return;
  event.preventDefault();
});

for (const button of document.querySelectorAll("[data-choice]")) {
  button.addEventListener("click", () => choose(button.dataset.choice));
}
byId("undo").addEventListener("click", () => act("/api/undo"));
byId("change-name").addEventListener("click", askName);
byId("name-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = byId("name").value.trim().replace(/\s+/g, " ");
  if (name) start(name);
});

if (labeler) start(labeler);
else askName();
