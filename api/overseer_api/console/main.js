// The console's entry: the sign-in panel, the namespace field and the hash router.

import {forgetToken, onAuthProblem, setToken, token} from "./api.js";
import {el, fill} from "./dom.js";
import * as execution from "./execution.js";
import * as executions from "./executions.js";
import * as job from "./job.js";
import * as jobs from "./jobs.js";
import * as repositories from "./repositories.js";
import {href, parse} from "./routes.js";

const view = document.getElementById("view");
const signin = document.getElementById("signin");
const signinForm = document.getElementById("signin-form");
const signinProblem = document.getElementById("signin-problem");
const tokenInput = document.getElementById("token");
const signOut = document.getElementById("sign-out");
const namespaceForm = document.getElementById("namespace-form");
const namespaceInput = document.getElementById("namespace");
const VIEWS = {jobs, job, execution, executions, repositories};
let current = null;

/** Show the sign-in panel, with the API's word on why when there is one. */
function askForToken(problem) {
  signin.hidden = false;
  signinProblem.hidden = !problem;
  if (problem) {
    const detail = problem.problem?.detail || problem.message;
    fill(signinProblem, `${problem.status} ${problem.problem?.title || ""}: ${detail}`);
  }
  tokenInput.value = "";
  tokenInput.focus();
}

function route() {
  current?.abort();
  current = new AbortController();
  const place = parse(location.hash);
  namespaceInput.value = place.namespace;
  document.getElementById("nav-jobs").setAttribute("href", href(place.namespace, "jobs"));
  document.getElementById("nav-executions")
    .setAttribute("href", href(place.namespace, "executions"));
  document.getElementById("nav-repositories")
    .setAttribute("href", href(place.namespace, "repositories"));
  signOut.hidden = !token();
  if (!token()) {
    fill(view);
    askForToken(null);
    return;
  }
  if (place.view === null) {
    fill(view, el("h1", {}, "Not found"),
      el("p", {}, "No view has this address. ", el("a", {href: href(place.namespace, "jobs")},
        "Jobs")));
    return;
  }
  VIEWS[place.view].render(view, {...place, signal: current.signal});
}

signinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const value = tokenInput.value.trim();
  if (!value) return;
  setToken(value);
  tokenInput.value = "";
  signin.hidden = true;
  signinProblem.hidden = true;
  route();
});

signOut.addEventListener("click", () => {
  forgetToken();
  route();
});

namespaceForm.addEventListener("submit", (event) => {
  event.preventDefault();
  location.hash = href(namespaceInput.value.trim(), "jobs");
});
namespaceInput.addEventListener("change", () => {
  location.hash = href(namespaceInput.value.trim(), "jobs");
});

onAuthProblem(askForToken);
window.addEventListener("hashchange", route);
route();
