// DOM helpers: every piece of data becomes a text node, never markup.
// Nothing in the console parses markup from data (tests/unit/test_console_files.py).

/**
 * An element: el("a", {href: "#/jobs", class: "x", onclick: fn}, "text", otherNode).
 * Attributes are set with setAttribute (an "on…" key adds a listener);
 * string and number children become text nodes; null and false are skipped.
 */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (value === true) {
      node.setAttribute(key, "");
    } else {
      node.setAttribute(key, String(value));
    }
  }
  append(node, children);
  return node;
}

/** Append children (nodes, texts, arrays of them) to a node. */
export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace a node's children. */
export function fill(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/** A phase as a coloured badge (Pending, Running, Complete, Failed, TimedOut, Killed). */
export function phaseBadge(phase) {
  const known = ["Pending", "Running", "Complete", "Failed", "TimedOut", "Killed"];
  const kind = known.includes(phase) ? phase : "unknown";
  return el("span", {class: `badge phase-${kind}`}, phase || "not started");
}

/** A time from the API (RFC 3339) as "2026-12-06 19:20:01 UTC", or a dash. */
export function time(value) {
  if (!value) return "–";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toISOString().replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC");
}

/** A definition list from [label, value] pairs; values may be nodes. Empty values skipped. */
export function facts(pairs) {
  const list = el("dl", {class: "facts"});
  for (const [label, value] of pairs) {
    if (value === null || value === undefined || value === "") continue;
    append(list, [el("dt", {}, label), el("dd", {}, value)]);
  }
  return list;
}

/** A table with a header row; rows are arrays of cells (texts or nodes). */
export function table(headers, rows, attributes = {}) {
  return el(
    "table",
    attributes,
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {scope: "col"}, h)))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c))))),
  );
}

/** Wait ms milliseconds, or until the signal aborts (then resolves at once). */
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, {once: true});
  });
}
