// Executions, newest first (GET /executions, filtered by job and phase), a page at a time.

import {path} from "./api.js";
import {append, el, fill, phaseBadge, time} from "./dom.js";
import {pagedList} from "./pages.js";
import {href} from "./routes.js";

const PAGE = 25;
const PHASES = ["Pending", "Running", "Complete", "Failed", "TimedOut", "Killed"];

function row(namespace, execution, withJob) {
  const trigger = execution.trigger || {};
  return el("tr", {},
    el("td", {}, el("a", {href: href(namespace, "jobs", execution.job, execution.id),
      class: "execution-id"}, execution.id)),
    withJob ? el("td", {}, el("a", {href: href(namespace, "jobs", execution.job)},
      execution.job)) : null,
    el("td", {}, phaseBadge(execution.phase)),
    el("td", {}, trigger.type || "", trigger.by ? ` by ${trigger.by}` : ""),
    el("td", {}, time(execution.startTime)),
    el("td", {}, time(execution.completionTime)));
}

/** A self-loading table of executions (of `job` when given), with a phase filter. */
export function executionsTable({namespace, signal, job = null}) {
  const phase = el("select", {"aria-label": "Phase", class: "phase-filter"},
    el("option", {value: ""}, "every phase"),
    PHASES.map((p) => el("option", {value: p}, p)));
  const headers = ["Execution", job === null ? "Job" : null, "Phase", "Trigger", "Started",
    "Ended"].filter((h) => h !== null);
  const {body, problem, more, load} = pagedList({
    url: path(namespace, "executions"),
    query: () => ({job, phase: phase.value, limit: PAGE}),
    row: (execution) => row(namespace, execution, job === null),
    signal,
    loaded: (rows) => {
      if (!rows.rows.length) append(rows, [el("tr", {}, el("td",
        {colspan: String(headers.length), class: "empty"}, "No executions."))]);
    },
  });
  phase.addEventListener("change", () => load(true));
  load(true);
  return el("section", {class: "executions"},
    el("div", {class: "toolbar"}, phase),
    problem,
    el("table", {class: "list"},
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", {scope: "col"}, h)))), body),
    more);
}

/** The executions view (#/executions): every job's. */
export function render(view, context) {
  fill(view, el("div", {class: "heading"}, el("h1", {}, "Executions")),
    executionsTable(context));
}
