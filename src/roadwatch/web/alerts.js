// Follows /alerts as Server-Sent Events read through fetch, so that the token travels in a
// header (EventSource cannot send one). Reconnects by itself and resumes after the last
// event seen (Last-Event-ID), so nothing is missed.
import { authorization, Unauthorized } from "./api.js";

export class AlertStream {
  constructor({ onAlert, onState, onUnauthorized }) {
    this.onAlert = onAlert;
    this.onState = onState;
    this.onUnauthorized = onUnauthorized;
    this.lastEventId = null;
    this.controller = null;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.loop();
  }

  stop() {
    this.stopped = true;
    this.controller?.abort();
    this.onState("offline");
  }

  async loop() {
    let delay = 500;
    while (!this.stopped) {
      try {
        await this.follow();
        delay = 500;
      } catch (error) {
        if (error instanceof Unauthorized) {
          this.stop();
          this.onUnauthorized();
          return;
        }
      }
      if (this.stopped) return;
      this.onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 10000);
    }
  }

  async follow() {
    this.controller = new AbortController();
    const headers = { ...authorization(), Accept: "text/event-stream" };
    if (this.lastEventId) headers["Last-Event-ID"] = this.lastEventId;
    const response = await fetch("/alerts", { headers, signal: this.controller.signal });
    if (response.status === 401) throw new Unauthorized();
    if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
    this.onState("live");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replaceAll("\r\n", "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        this.dispatch(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  }

  dispatch(block) {
    let event = "message", id = null;
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
      else if (field === "id") id = value;
    }
    if (event === "alert" && data.length) {
      if (id) this.lastEventId = id;
      this.onAlert(JSON.parse(data.join("\n")));
    } else if (event === "gap") {
      // Missed alerts older than the server keeps: the history panel holds them; resume past.
      if (id) this.lastEventId = id;
    } else if (event === "dropped") {
      // Fell behind: the server closes; the loop reconnects from the last event seen.
      this.controller.abort();
    }
  }
}
