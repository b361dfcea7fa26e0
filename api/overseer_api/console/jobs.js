// The jobs list: name, description, schedule, active or not, last execution's phase;
// a filter (names containing the text, as GET /jobs?q= does) and a page at a time.

import {path} from "./api.js";
import {el, fill, phaseBadge, time} from "./dom.js";
import {pagedList} from "./pages.js";
import {href} from "./routes.js";

const PAGE = 50;

function row(namespace, job) {
  const last = job.lastExecution;
  const schedule = job.schedule
    ? el("span", {class: "schedule"}, el("code", {}, job.schedule.cron),
      job.schedule.timezone ? ` (${job.schedule.timezone})` : "",
      job.nextRun ? el("small", {}, ` next ${time(job.nextRun)}`) : "")
    : "–";
  return el("tr", {class: job.active ? "" : "inactive"},
    el("td", {}, el("a", {href: href(namespace, "jobs", job.name), class: "job-name"}, job.name)),
    el("td", {class: "description"}, job.description || ""),
    el("td", {}, schedule),
    el("td", {}, el("span", {class: job.active ? "badge active" : "badge inactive"},
      job.active ? "active" : "deactivated")),
    el("td", {}, last
      ? el("a", {href: href(namespace, "jobs", job.name, last.id)}, phaseBadge(last.phase))
      : "–"));
}

/** Render the jobs list of `namespace` into `view`. */
export function render(view, {namespace, signal}) {
  const filter = el("input", {type: "search", id: "job-filter", placeholder: "Filter by name",
    "aria-label": "Filter jobs by name", autocomplete: "off", spellcheck: "false"});
  const which = el("select", {id: "job-activity", "aria-label": "Active or deactivated"},
    el("option", {value: ""}, "all jobs"),
    el("option", {value: "true"}, "active"),
    el("option", {value: "false"}, "deactivated"));
  const count = el("span", {class: "count"});
  const {body, problem, more, load} = pagedList({
    url: path(namespace, "jobs"),
    query: () => ({q: filter.value, active: which.value, limit: PAGE}),
    row: (job) => row(namespace, job),
    signal,
    loaded: (rows, cursor) => fill(count, `${rows.rows.length}${cursor ? "+" : ""} jobs`),
  });

  let timer = null;
  filter.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => load(true), 250);
  });
  which.addEventListener("change", () => load(true));
  fill(view,
    el("div", {class: "heading"}, el("h1", {}, "Jobs"), count),
    el("div", {class: "toolbar"}, filter, which),
    problem,
    el("table", {class: "list", id: "jobs"},
      el("thead", {}, el("tr", {}, ["Name", "Description", "Schedule", "State", "Last"]
        .map((h) => el("th", {scope: "col"}, h)))),
      body),
    more);
  load(true);
}
