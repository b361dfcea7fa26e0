// The REST API as the console calls it: paths, the bearer token, problem details.
// The console is a client like any other: it calls only the API's public routes.

import {el} from "./dom.js";

const TOKEN_KEY = "overseer.console.token";

/** The API's root: the console is served at <root>/console/, behind any path prefix. */
export const ROOT = new URL("../", document.baseURI);

/** The token of this tab (sessionStorage: never localStorage, never the URL). */
export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** A path segment encoded whole, as the CLI does: "a/b c" -> "a%2Fb%20c". */
export function quote(segment) {
  return encodeURIComponent(segment);
}

/** A path under the namespace (none or "" is the API's default one), segments quoted. */
export function path(namespace, ...segments) {
  const base = namespace ? ["namespaces", namespace] : [];
  return [...base, ...segments].map(quote).join("/");
}

/** An error answer of the API: its status and problem details (RFC 9457). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** Who listens for 401 and 403 answers (the sign-in panel). */
const authListeners = new Set();

export function onAuthProblem(listener) {
  authListeners.add(listener);
}

async function problemOf(response) {
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) {
    try {
      return await response.json();
    } catch {
      // fall through: an unreadable body is answered by its status alone
    }
  }
  const text = await response.text().catch(() => "");
  return {status: response.status, title: response.statusText, detail: text.slice(0, 2000)};
}

/**
 * A request to the API; resolves to the Response when it is 2xx, else throws ApiError
 * (after telling the sign-in panel of a 401 or 403). A network failure throws TypeError.
 * options: {query: {k: v}, json: body, headers: {}, signal}
 */
export async function request(method, relative, options = {}) {
  const url = new URL(relative, ROOT);
  for (const [key, value] of Object.entries(options.query || {})) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(key, value);
  }
  const headers = {Accept: "application/json", ...(options.headers || {})};
  const current = token();
  if (current) headers.Authorization = `Bearer ${current}`;
  const init = {method, headers, signal: options.signal, cache: "no-store", credentials: "omit"};
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.json);
  }
  const response = await fetch(url, init);
  if (response.ok) return response;
  const error = new ApiError(response.status, await problemOf(response));
  if (response.status === 401 || response.status === 403) {
    for (const listener of authListeners) listener(error);
  }
  throw error;
}

/** A GET answered with JSON. */
export async function getJson(relative, query, signal) {
  return (await request("GET", relative, {query, signal})).json();
}

/** A fresh Idempotency-Key: a click sent twice makes one execution, not two. */
export function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "console-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** An error shown to the user: the API's problem (title, detail, each field), as text. */
export function problemNode(error) {
  if (error instanceof ApiError) {
    const problem = error.problem || {};
    const fields = Array.isArray(problem.errors) ? problem.errors : [];
    return el(
      "div",
      {class: "problem", role: "alert"},
      el("strong", {}, `${error.status} ${problem.title || ""}`.trim()),
      el("p", {class: "detail"}, problem.detail || ""),
      fields.length
        ? el("ul", {}, fields.map((f) => el("li", {}, el("code", {}, f.field), ": ", f.message)))
        : null,
    );
  }
  if (error?.name === "AbortError") return null;
  return el(
    "div",
    {class: "problem", role: "alert"},
    el("strong", {}, "The API could not be reached"),
    el("p", {class: "detail"}, String(error?.message || error)),
  );
}
