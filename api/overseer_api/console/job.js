// One job: its definition, a form made from its declared parameters to run it,
// activate / deactivate, and its executions.

import {getJson, idempotencyKey, path, problemNode, request} from "./api.js";
import {el, facts, fill, time} from "./dom.js";
import {executionsTable} from "./executions.js";
import {href} from "./routes.js";

function field(name, parameter) {
  const id = `parameter-${name}`;
  let input;
  if (Array.isArray(parameter.allowed) && parameter.allowed.length) {
    input = el("select", {id, name},
      parameter.required ? null : el("option", {value: ""}, parameter.hasDefault
        ? `(default${parameter.default !== undefined && parameter.default !== null
          ? `: ${parameter.default}` : ""})` : "(none)"),
      parameter.allowed.map((value) => el("option", {value}, value)));
  } else {
    const hint = parameter.secret
      ? (parameter.hasDefault ? "secret; empty keeps its default" : "secret")
      : (parameter.hasDefault ? `default: ${parameter.default ?? ""}` : "");
    input = el("input", {id, name, type: parameter.secret ? "password" : "text",
      placeholder: hint, autocomplete: "off", spellcheck: "false"});
  }
  const node = el("div", {class: "field"},
    el("label", {for: id}, name, parameter.required ? el("span", {class: "required",
      title: "required"}, " *") : ""),
    input,
    parameter.description ? el("small", {}, parameter.description) : null);
  return {node, input};
}

/** The values to send: each field filled in (an empty one leaves the default). */
function values(inputs) {
  const sent = {};
  for (const [name, input] of inputs) {
    if (input.value !== "") sent[name] = input.value;
  }
  return sent;
}

function runForm(job, {namespace, signal}) {
  const fields = Object.entries(job.parameters || {}).map(([name, p]) => [name, field(name, p)]);
  const inputs = fields.map(([name, f]) => [name, f.input]);
  const problem = el("div");
  const button = el("button", {type: "submit", disabled: !job.active}, "Run");
  const form = el("form", {class: "run", id: "run-form"},
    fields.map(([, f]) => f.node),
    fields.length ? null : el("p", {class: "hint"}, "No parameters."),
    el("div", {class: "actions"}, button,
      job.active ? null : el("span", {class: "hint"}, " Deactivated: activate it to run it.")),
    problem);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    fill(problem);
    try {
      const response = await request("POST", path(namespace, "jobs", job.name), {
        json: values(inputs), signal,
        headers: {"Idempotency-Key": idempotencyKey()},
      });
      const created = await response.json();
      location.hash = href(namespace, "jobs", job.name, created.id);
    } catch (error) {
      fill(problem, problemNode(error));
      button.disabled = false;
    }
  });
  return form;
}

function activation(job, context, rerender) {
  const problem = el("span");
  const button = el("button", {type: "button", class: "quiet", id: "toggle-active"},
    job.active ? "Deactivate" : "Activate");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await request(job.active ? "DELETE" : "PUT", path(context.namespace, "jobs", job.name),
        {signal: context.signal});
      rerender();
    } catch (error) {
      fill(problem, problemNode(error));
      button.disabled = false;
    }
  });
  return el("div", {class: "activation"}, button, problem);
}

function summary(job, namespace) {
  const source = job.source || {};
  return facts([
    ["State", el("span", {class: job.active ? "badge active" : "badge inactive"},
      job.active ? "active" : "deactivated")],
    ["Description", job.description],
    ["Schedule", job.schedule ? `${job.schedule.cron}${job.schedule.timezone
      ? ` (${job.schedule.timezone})` : ""}` : null],
    ["Next run", job.nextRun ? time(job.nextRun) : null],
    ["Source", [source.repository
      ? el("a", {href: href(namespace, "repositories", source.repository),
        id: "job-repository"}, source.repository) : "–",
    `: ${source.file} @ ${(source.commit || "").slice(0, 12)}`]],
    ["Changed", job.activeChanged
      ? `${job.active ? "activated" : "deactivated"} by ${job.activeChanged.by} at ${
        time(job.activeChanged.at)}` : null],
  ]);
}

/** Render the job `context.job` into `view`. */
export async function render(view, context) {
  const {namespace, signal} = context;
  let job;
  try {
    job = await getJson(path(namespace, "jobs", context.job), {}, signal);
  } catch (error) {
    fill(view, el("h1", {}, context.job), problemNode(error));
    return;
  }
  if (signal.aborted) return;
  fill(view,
    el("nav", {class: "crumbs"}, el("a", {href: href(namespace, "jobs")}, "Jobs"), " › "),
    el("div", {class: "heading"}, el("h1", {id: "job-title"}, job.name),
      activation(job, context, () => render(view, context))),
    summary(job, namespace),
    el("div", {class: "columns"},
      el("section", {}, el("h2", {}, "Run"), runForm(job, context)),
      el("section", {}, el("h2", {}, "Definition"),
        el("pre", {class: "definition"}, JSON.stringify(job.definition, null, 2)))),
    el("h2", {}, "Executions"),
    executionsTable({namespace, signal, job: job.name}));
}
