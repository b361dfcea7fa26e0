// The repositories (GET /repositories, or one: GET /repositories/NAME): where the jobs
// come from, the commit synced, Ready or not and why, the errors found in job files;
// "Sync now" asks for a sync (POST /sync?repository=) and follows it until it is handled.

import {getJson, idempotencyKey, path, problemNode, request} from "./api.js";
import {el, fill, sleep, time} from "./dom.js";
import {href} from "./routes.js";

const POLL_MS = 1500;
const POLL_FOR_MS = 60_000;
const COLUMNS = ["Name", "URL", "Ref", "Commit", "Ready", "Jobs", "Last sync", "Why", ""];

/** Ready as a badge coloured like the phases: ready green, not ready red. */
function readyBadge(ready) {
  if (ready === true) return el("span", {class: "badge phase-Complete"}, "ready");
  if (ready === false) return el("span", {class: "badge phase-Failed"}, "not ready");
  return el("span", {class: "badge phase-unknown"}, "not synced");
}

/** The errors the last sync found in job files: file, job, field, message. */
function errorsRow(repository) {
  const errors = Array.isArray(repository.errors) ? repository.errors : [];
  if (!errors.length) return null;
  return el("tr", {class: "repository-errors"},
    el("td", {colspan: COLUMNS.length},
      el("ul", {class: "definition-errors"}, errors.map((e) => el("li", {},
        el("code", {}, e.file, e.line ? `:${e.line}` : ""),
        e.job ? [" job ", el("strong", {}, e.job)] : "",
        e.field ? [" ", el("code", {}, e.field)] : "",
        ": ", e.message)))));
}

/** Whether the repository shows the sync requested at `requestedAt` handled. */
export function handled(repository, requestedAt) {
  const asked = Date.parse(requestedAt);
  const after = (value) => Boolean(value) && Date.parse(value) >= asked;
  return after(repository.syncHandledAt) || after(repository.lastSyncTime);
}

function cells(namespace, repository, note) {
  const why = repository.ready === true ? ""
    : [repository.reason, repository.message].filter(Boolean).join(": ");
  return [
    el("td", {}, el("a", {href: href(namespace, "repositories", repository.name),
      class: "repository-name"}, repository.name)),
    el("td", {class: "url"}, el("code", {}, repository.url)),
    el("td", {}, repository.ref || "HEAD"),
    el("td", {class: "commit"}, el("code", {title: repository.commit || ""},
      repository.shortCommit || (repository.commit || "").slice(0, 12) || "–")),
    el("td", {}, readyBadge(repository.ready)),
    el("td", {class: "job-count"}, repository.jobCount ?? "–"),
    el("td", {}, time(repository.lastSyncTime)),
    el("td", {class: "why"}, why),
    el("td", {class: "sync"}, note),
  ];
}

/** One repository's rows (itself, its errors), redrawn in place as its sync goes on. */
function repositoryRows(namespace, repository, signal) {
  const row = el("tr", {"data-repository": repository.name});
  const problem = el("div", {class: "sync-problem"});
  const button = el("button", {type: "button", class: "quiet"}, "Sync now");
  const status = el("span", {class: "sync-status hint"});
  const note = [button, status, problem];
  let errors = errorsRow(repository);

  function draw(current) {
    fill(row, cells(namespace, current, note));
    const next = errorsRow(current);
    if (errors) errors.replaceWith(next || "");
    else if (next) row.after(next);
    errors = next;
  }

  async function follow(requestedAt) {
    const deadline = Date.now() + POLL_FOR_MS;
    while (!signal.aborted && Date.now() < deadline) {
      await sleep(POLL_MS, signal);
      if (signal.aborted) return;
      let current;
      try {
        current = await getJson(path(namespace, "repositories", repository.name), {}, signal);
      } catch (error) {
        fill(problem, problemNode(error));
        continue;
      }
      fill(problem);
      draw(current);
      if (handled(current, requestedAt)) {
        fill(status, current.ready === true
          ? `synced ${current.shortCommit || ""}`.trim() : "sync failed");
        return;
      }
    }
    if (!signal.aborted) fill(status, "no answer to the sync request yet");
  }

  button.addEventListener("click", async () => {
    button.disabled = true;
    fill(problem);
    fill(status);
    try {
      const response = await request("POST", path(namespace, "sync"), {
        query: {repository: repository.name}, signal,
        headers: {"Idempotency-Key": idempotencyKey()},
      });
      const answer = await response.json();
      fill(status, "sync requested…");
      await follow(answer.requestedAt);
    } catch (error) {
      fill(status);
      fill(problem, problemNode(error));
    }
    button.disabled = false;
  });
  fill(row, cells(namespace, repository, note));
  return [row, errors];
}

/** Render the repositories of `namespace` (or only `context.repository`) into `view`. */
export async function render(view, context) {
  const {namespace, signal} = context;
  const one = context.repository;
  let items;
  try {
    items = one === undefined
      ? (await getJson(path(namespace, "repositories"), {}, signal)).items
      : [await getJson(path(namespace, "repositories", one), {}, signal)];
  } catch (error) {
    fill(view, el("h1", {}, one ?? "Repositories"), problemNode(error));
    return;
  }
  if (signal.aborted) return;
  fill(view,
    one === undefined ? null : el("nav", {class: "crumbs"},
      el("a", {href: href(namespace, "repositories")}, "Repositories"), " › "),
    el("div", {class: "heading"}, el("h1", {}, one ?? "Repositories"),
      el("span", {class: "count"}, `${items.length} repositories`)),
    el("table", {class: "list", id: "repositories"},
      el("thead", {}, el("tr", {}, COLUMNS.map((h) => el("th", {scope: "col"}, h)))),
      el("tbody", {}, items.map((r) => repositoryRows(namespace, r, signal)))),
    items.length ? null : el("p", {class: "hint"}, "No repositories in this namespace."));
}
