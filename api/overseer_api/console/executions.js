// Executions, newest first (GET /executions, filtered by job and phase), a page at a time.

import {getJson, path, problemNode} from "./api.js";
import {append, el, fill, phaseBadge, time} from "./dom.js";
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
  const body = el("tbody");
  const problem = el("div");
  const more = el("button", {type: "button", class: "quiet", hidden: true}, "More");
  const headers = ["Execution", job === null ? "Job" : null, "Phase", "Trigger", "Started",
    "Ended"].filter((h) => h !== null);
  let cursor = null;
  let generation = 0;

  async function load(reset) {
    const mine = reset ? ++generation : generation;
    if (reset) cursor = null;
    try {
      const page = await getJson(path(namespace, "executions"),
        {job, phase: phase.value, limit: PAGE, continue: cursor}, signal);
      if (mine !== generation) return;
      if (reset) fill(body);
      fill(problem);
      append(body, page.items.map((e) => row(namespace, e, job === null)));
      if (!body.rows.length) append(body, [el("tr", {}, el("td",
        {colspan: String(headers.length), class: "empty"}, "No executions."))]);
      cursor = page.continue;
      more.hidden = !cursor;
    } catch (error) {
      if (mine === generation) fill(problem, problemNode(error));
    }
  }
  phase.addEventListener("change", () => load(true));
  more.addEventListener("click", () => load(false));
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
