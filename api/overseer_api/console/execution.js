// One execution: phase, times, exit code, parameters, events, signals; stdout and stderr
// apart, each followed live while it runs; repeat it, or send its process a signal.

import {getJson, idempotencyKey, path, problemNode, request} from "./api.js";
import {el, facts, fill, phaseBadge, sleep, table, time} from "./dom.js";
import {OutputPane} from "./output.js";
import {href} from "./routes.js";

export const TERMINAL = ["Complete", "Failed", "TimedOut", "Killed"];
const SIGNALS = ["TERM", "INT", "HUP", "QUIT", "KILL", "USR1", "USR2", "ALRM", "CONT", "WINCH"];
const POLL_MS = 1500;

function details(execution, namespace) {
  const trigger = execution.trigger || {};
  const repeated = trigger.repeatOf
    ? el("a", {href: href(namespace, "jobs", execution.job, trigger.repeatOf)}, trigger.repeatOf)
    : null;
  return facts([
    ["Phase", phaseBadge(execution.phase)],
    ["Trigger", `${trigger.type || ""}${trigger.by ? ` by ${trigger.by}` : ""}`],
    ["Repeat of", repeated],
    ["Started", time(execution.startTime)],
    ["Ended", execution.completionTime ? time(execution.completionTime) : null],
    ["Duration", execution.duration],
    ["Exit code", execution.exitCode === null || execution.exitCode === undefined
      ? null : el("code", {id: "exit-code"}, String(execution.exitCode))],
    ["Signal", execution.signal],
    ["Reason", execution.reason],
    ["Message", execution.message],
    ["Commit", execution.commit ? el("code", {}, execution.commit.slice(0, 12)) : null],
  ]);
}

function extras(execution) {
  const parameters = Object.entries(execution.parameters || {});
  const events = execution.events || [];
  const signals = execution.signals || [];
  return [
    el("h2", {}, "Parameters"),
    parameters.length
      ? table(["Name", "Value"], parameters.map(([k, v]) => [el("code", {}, k),
        el("code", {class: "value"}, v)]), {class: "list", id: "parameters"})
      : el("p", {class: "hint"}, "None."),
    el("h2", {}, "Events"),
    table(["Status", "Time", "Data"], events.map((e) => [e.status, time(e.time),
      e.data === null || e.data === undefined ? "" : el("code", {}, JSON.stringify(e.data))]),
    {class: "list", id: "events"}),
    signals.length ? el("h2", {}, "Signals") : null,
    signals.length ? table(["Signal", "Requested", "By", "Result", "Message"],
      signals.map((s) => [s.signal, time(s.requestedAt), s.requestedBy || "",
        s.result || "pending", s.message || ""]), {class: "list", id: "signals"}) : null,
  ];
}

function actions(execution, context) {
  const {namespace, signal} = context;
  const where = path(namespace, "jobs", execution.job, execution.id);
  const problem = el("div");
  const latest = el("input", {type: "checkbox", id: "repeat-latest"});
  const repeat = el("button", {type: "button", id: "repeat"}, "Repeat");
  const choice = el("select", {id: "signal", "aria-label": "Signal"},
    SIGNALS.map((s) => el("option", {value: s}, s)));
  const send = el("button", {type: "button", id: "send-signal"}, "Send signal");
  const said = el("span", {class: "hint", id: "signal-sent"});
  const ended = TERMINAL.includes(execution.phase);
  send.disabled = ended;
  choice.disabled = ended;
  repeat.addEventListener("click", async () => {
    repeat.disabled = true;
    try {
      const response = await request("POST", where, {signal,
        query: {revision: latest.checked ? "latest" : null},
        headers: {"Idempotency-Key": idempotencyKey()}});
      const created = await response.json();
      location.hash = href(namespace, "jobs", execution.job, created.id);
    } catch (error) {
      fill(problem, problemNode(error));
      repeat.disabled = false;
    }
  });
  send.addEventListener("click", async () => {
    fill(problem);
    try {
      const response = await request("PUT", where, {signal, query: {signal: choice.value}});
      const accepted = await response.json();
      fill(said, `${accepted.signal} requested`);
    } catch (error) {
      fill(problem, problemNode(error));
    }
  });
  const node = el("div", {class: "actions"},
    repeat, el("label", {for: "repeat-latest", class: "check"}, latest,
      " with the job's latest definition"),
    el("span", {class: "spacer"}), choice, send, said);
  return {node: el("div", {}, node, problem), send, choice};
}

/** Render the execution `context.execution` of job `context.job` into `view`. */
export async function render(view, context) {
  const {namespace, signal} = context;
  const where = path(namespace, "jobs", context.job, context.execution);
  let execution;
  try {
    execution = await getJson(where, {}, signal);
  } catch (error) {
    fill(view, el("h1", {}, context.execution), problemNode(error));
    return;
  }
  if (signal.aborted) return;
  const file = `${execution.job.replace(/[^\w.-]+/g, "_")}-${execution.id}`;
  const stdout = new OutputPane("stdout", `${where}/stdout`, `${file}.stdout`);
  const stderr = new OutputPane("stderr", `${where}/stderr`, `${file}.stderr`);
  const summary = el("div");
  const badge = el("span", {id: "phase"});
  const more = el("div");
  const problem = el("div");
  const controls = actions(execution, context);
  fill(view,
    el("nav", {class: "crumbs"}, el("a", {href: href(namespace, "jobs")}, "Jobs"), " › ",
      el("a", {href: href(namespace, "jobs", execution.job)}, execution.job), " ›"),
    el("div", {class: "heading"}, el("h1", {}, execution.id), badge),
    controls.node, problem, summary,
    el("div", {class: "outputs"}, stdout.node, stderr.node),
    more);
  const follow = !TERMINAL.includes(execution.phase);
  stdout.read(follow, signal);
  stderr.read(follow, signal);
  for (;;) {
    fill(badge, phaseBadge(execution.phase));
    fill(summary, details(execution, namespace));
    fill(more, extras(execution));
    if (TERMINAL.includes(execution.phase)) {
      controls.send.disabled = true;
      controls.choice.disabled = true;
      return;
    }
    await sleep(POLL_MS, signal);
    if (signal.aborted) return;
    try {
      execution = await getJson(where, {}, signal);
      fill(problem);
    } catch (error) {
      if (signal.aborted) return;
      fill(problem, problemNode(error));
    }
  }
}
