// Hash routes: #/jobs, #/jobs/NAME, #/jobs/NAME/ID, #/executions, #/repositories,
// #/repositories/NAME, each optionally under
// #/namespaces/NS/. Every segment is URL-encoded whole, so a name may hold spaces,
// unicode and slashes ("a/b" is #/jobs/a%2Fb).

import {quote} from "./api.js";

/** The hash of a view: href(namespace, "jobs", name, id). */
export function href(namespace, ...segments) {
  const base = namespace ? ["namespaces", namespace] : [];
  return "#/" + [...base, ...segments].map(quote).join("/");
}

/**
 * The route of a hash: {namespace, view, job, execution, repository}; view is null when
 * unknown.
 */
export function parse(hash) {
  let parts;
  try {
    parts = hash.replace(/^#\/?/, "").split("/").filter((p) => p !== "").map(decodeURIComponent);
  } catch {
    return {namespace: "", view: null};
  }
  let namespace = "";
  if (parts[0] === "namespaces" && parts.length >= 2) {
    namespace = parts[1];
    parts = parts.slice(2);
  }
  const [first, job, execution, ...rest] = parts;
  if (rest.length) return {namespace, view: null};
  if (first === undefined) return {namespace, view: "jobs"};
  if (first === "executions" && job === undefined) return {namespace, view: "executions"};
  if (first === "repositories" && execution === undefined) {
    return job === undefined ? {namespace, view: "repositories"}
      : {namespace, view: "repositories", repository: job};
  }
  if (first !== "jobs") return {namespace, view: null};
  if (job === undefined) return {namespace, view: "jobs"};
  if (execution === undefined) return {namespace, view: "job", job};
  return {namespace, view: "execution", job, execution};
}
