// A list the API serves a page at a time (GET /jobs, GET /executions): each page's rows
// appended to a table body, "More" while a next page exists, the API's problem in place.

import {getJson, problemNode} from "./api.js";
import {append, el, fill} from "./dom.js";

/**
 * The body, problem and "More" button of a paged list, and `load`: `load(true)` starts
 * over (a filter changed), `load(false)` appends the next page. An answer to an earlier
 * start is dropped, so a slow page never lands under a newer filter. `loaded(body,
 * cursor)` runs after each page is shown.
 */
export function pagedList({url, query, row, signal, loaded = () => {}}) {
  const body = el("tbody");
  const problem = el("div");
  const more = el("button", {type: "button", class: "quiet", hidden: true}, "More");
  let cursor = null;
  let generation = 0;

  async function load(reset) {
    const mine = reset ? ++generation : generation;
    if (reset) cursor = null;
    try {
      const page = await getJson(url, {...query(), continue: cursor}, signal);
      if (mine !== generation) return;
      if (reset) fill(body);
      fill(problem);
      append(body, page.items.map(row));
      cursor = page.continue;
      more.hidden = !cursor;
      loaded(body, cursor);
    } catch (error) {
      if (mine === generation) fill(problem, problemNode(error));
    }
  }

  more.addEventListener("click", () => load(false));
  return {body, problem, more, load};
}
