// Acknowledging: the dialog that asks for the text (one event or many), and the pop-ups of
// events whose definition requires acknowledgement. A pop-up goes away for everyone once
// anyone acknowledged its event: the page asks history for the open ones every few seconds
// (the same query gives the count of open alerts in the header).

import { $, clear, displayPath, el, shortTime, summary } from "./util.js";

const POLL_MS = 2000;
const OPEN_LIMIT = 50;
const SHOWN = 4; // pop-ups on screen at once; the rest are counted

export class Acknowledger {
  constructor(api, { onAcknowledged }) {
    this.api = api;
    this.onAcknowledged = onAcknowledged;
    this.dialog = $("#ack-dialog");
    this.act = async () => [];
    $("#ack-cancel").addEventListener("click", () => this.dialog.close());
    $("#ack-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.#submit();
    });
  }

  ask(events) {
    if (!events.length) return;
    const what =
      events.length === 1
        ? `${events[0].name} in ${displayPath(events[0].context)} at ${shortTime(events[0].created)}`
        : `${events.length} events`;
    this.askFor(what, (text) => this.acknowledge(events.map((e) => e.id), text));
  }

  // The dialog for anything acknowledged with a text: act(text) returns error messages.
  askFor(what, act) {
    this.act = act;
    $("#ack-what").textContent = what;
    $("#ack-error").textContent = "";
    $("#ack-text").value = "";
    this.dialog.showModal();
    $("#ack-text").focus();
  }

  async #submit() {
    const text = $("#ack-text").value.trim();
    if (!text) {
      $("#ack-error").textContent = "Say what was done about it.";
      return;
    }
    $("#ack-submit").disabled = true;
    const failures = await this.act(text);
    $("#ack-submit").disabled = false;
    if (failures.length) $("#ack-error").textContent = failures.join("; ");
    else this.dialog.close();
  }

  // Acknowledge every id with text; returns the error messages (empty: all done).
  async acknowledge(ids, text) {
    const failures = [];
    await Promise.all(
      ids.map(async (id) => {
        try {
          const answer = await this.api.call("POST", `/events/${id}/acknowledge`, { text });
          this.onAcknowledged(answer.event);
        } catch (error) {
          failures.push(`event ${id}: ${error.message.split("\n")[0]}`);
        }
      }),
    );
    return failures;
  }
}

export class Popups {
  constructor(api, catalog, acknowledger, { onCount, onOpen }) {
    this.api = api;
    this.catalog = catalog;
    this.acknowledger = acknowledger;
    this.onCount = onCount;
    this.onOpen = onOpen;
    this.host = $("#popups");
    this.open = new Map(); // id -> event, newest last
    this.timer = null;
  }

  start() {
    this.stop();
    const poll = async () => {
      await this.poll();
      this.timer = setTimeout(poll, POLL_MS);
    };
    poll();
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
    this.open.clear();
    clear(this.host);
  }

  async poll() {
    try {
      const page = await this.api.call("GET", "/history", null, {
        query: { requires_acknowledgement: true, acknowledged: false, limit: OPEN_LIMIT, count: true },
      });
      this.onCount(page.count);
      const ids = new Set(page.events.map((e) => e.id));
      let changed = false;
      for (const id of [...this.open.keys()]) {
        if (!ids.has(id)) {
          this.open.delete(id); // acknowledged (by anyone) or gone
          changed = true;
        }
      }
      for (const event of [...page.events].reverse()) {
        if (!this.open.has(event.id)) {
          this.open.set(event.id, event);
          changed = true;
        }
      }
      if (changed) this.render();
    } catch {
      /* the next poll tries again; a 401 signs out */
    }
  }

  // Live events: those whose definition requires acknowledgement pop up at once.
  consider(events) {
    let changed = false;
    for (const event of events) {
      if ((event.acknowledgements || []).length) continue;
      const definition = this.catalog.definitionNow(event.context, event.name);
      if (definition === undefined) {
        this.catalog.definition(event.context, event.name).then((d) => d && d.requires_acknowledgement && this.#add(event));
      } else if (definition && definition.requires_acknowledgement && !this.open.has(event.id)) {
        this.open.set(event.id, event);
        changed = true;
      }
    }
    if (changed) this.render();
  }

  #add(event) {
    if (this.open.has(event.id)) return;
    this.open.set(event.id, event);
    this.render();
  }

  acknowledged(event) {
    if (this.open.delete(event.id)) this.render();
  }

  render() {
    const events = [...this.open.values()].reverse(); // newest first
    const shown = events.slice(0, SHOWN);
    const keep = new Map([...this.host.querySelectorAll(".popup")].map((n) => [n.dataset.id, n]));
    const wanted = new Set(shown.map((e) => e.id));
    for (const [id, node] of keep) if (!wanted.has(id)) node.remove();
    this.host.querySelector(".more")?.remove();
    // Nodes that stay are not moved unless they must be: a text being typed keeps its focus.
    let before = this.host.firstChild;
    for (const event of shown) {
      const node = keep.get(event.id) || this.#popup(event);
      if (node !== before) this.host.insertBefore(node, before);
      before = node.nextSibling;
    }
    if (events.length > SHOWN) {
      this.host.append(
        el("a", { class: "more", href: "#/history?ack=todo" }, `${events.length - SHOWN} more to acknowledge`),
      );
    }
  }

  #popup(event) {
    const id = `popup-text-${event.id}`;
    const error = el("p", { class: "error", role: "alert" });
    const input = el("input", { id, name: "text", required: true, autocomplete: "off" });
    const form = el(
      "form",
      {
        class: "popup",
        novalidate: true,
        "data-id": event.id,
        "data-level": event.level,
        role: "alertdialog",
        "aria-labelledby": `popup-title-${event.id}`,
        onsubmit: async (e) => {
          e.preventDefault();
          const text = input.value.trim();
          if (!text) {
            error.textContent = "Say what was done about it.";
            return input.focus();
          }
          const failures = await this.acknowledger.acknowledge([event.id], text);
          error.textContent = failures.join("; ");
        },
      },
      el(
        "h3",
        { id: `popup-title-${event.id}` },
        el("span", { class: "level" }, event.level),
        ` ${event.name} in ${displayPath(event.context)}`,
      ),
      el("p", { class: "text" }, summary(event)),
      el("p", { class: "muted" }, shortTime(event.created)),
      el("label", { for: id }, "What was done"),
      input,
      error,
      el(
        "div",
        { class: "actions" },
        el("button", { type: "button", onclick: () => this.onOpen(event) }, "Details"),
        el("button", { type: "submit", class: "primary" }, "Acknowledge"),
      ),
    );
    return form;
  }
}
