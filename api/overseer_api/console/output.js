// An execution's stdout or stderr in a pane of its own, read with fetch and a
// ReadableStream: followed live (?follow=true) while the execution runs, resumed from
// the last byte received (?offset=N) after a dropped connection.

import {ApiError, problemNode, request} from "./api.js";
import {el, fill, sleep} from "./dom.js";

/** Characters shown at most in one pane; the rest is counted (Download has it all). */
export const SHOWN_AT_MOST = 4 * 1024 * 1024;
const RETRIES = 5;

/** A pane: a title, a status line, a Download button and the monospace text. */
export class OutputPane {
  constructor(stream, relativePath, fileName) {
    this.stream = stream;
    this.relativePath = relativePath;
    this.fileName = fileName;
    this.text = document.createTextNode("");
    this.shown = 0;
    this.received = 0;
    this.status = el("span", {class: "output-status"}, "waiting");
    this.problem = el("div");
    this.pre = el("pre", {class: `output output-${stream}`, id: `output-${stream}`,
      tabindex: "0", "aria-label": stream}, this.text);
    const download = el("button", {type: "button", class: "quiet",
      onclick: () => this.download()}, "Download");
    this.node = el("section", {class: "pane"},
      el("header", {}, el("h3", {}, stream), this.status, download),
      this.problem, this.pre);
  }

  write(text) {
    if (!text) return;
    const room = SHOWN_AT_MOST - this.shown;
    if (room > 0) {
      this.text.appendData(text.slice(0, room));
      this.shown += Math.min(room, text.length);
    }
    const atEnd = this.pre.scrollTop + this.pre.clientHeight >= this.pre.scrollHeight - 24;
    if (atEnd) this.pre.scrollTop = this.pre.scrollHeight;
  }

  say(state) {
    const cut = this.shown >= SHOWN_AT_MOST ? " (only the start is shown: Download has it all)" : "";
    fill(this.status, `${state}: ${this.received} bytes${cut}`);
    this.node.dataset.state = state;
  }

  /** Read the stream; follow it while the execution may still write. */
  async read(follow, signal) {
    const decoder = new TextDecoder();
    for (let attempt = 0; ; attempt += 1) {
      try {
        const query = follow ? {follow: "true", offset: String(this.received)} : {};
        this.say(follow ? "following" : "reading");
        const response = await request("GET", this.relativePath, {query, signal,
          headers: {Accept: "application/octet-stream"}});
        const reader = response.body.getReader();
        for (;;) {
          const {done, value} = await reader.read();
          if (done) break;
          this.received += value.length;
          this.write(decoder.decode(value, {stream: true}));
          if (follow) this.say("following");
        }
        this.write(decoder.decode());
        const incomplete = response.headers.get("Overseer-Output-Incomplete") === "true";
        this.say(!follow && incomplete ? "incomplete" : "ended");
        return;
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof ApiError || !follow || attempt >= RETRIES) {
          this.say("failed");
          fill(this.problem, problemNode(error));
          return;
        }
        this.say("reconnecting");
        await sleep(1000 * (attempt + 1), signal);
      }
    }
  }

  /** The whole stream, saved as a file (fetched with the token; no token in any URL). */
  async download() {
    try {
      const response = await request("GET", this.relativePath,
        {headers: {Accept: "application/octet-stream"}});
      const url = URL.createObjectURL(await response.blob());
      const link = el("a", {href: url, download: this.fileName});
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (error) {
      fill(this.problem, problemNode(error));
    }
  }
}
