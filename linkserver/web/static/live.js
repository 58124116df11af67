// The live log: one WebSocket subscription for the filters in force, its events drawn as
// they arrive while that is cheap and in batches once per animation frame when they come
// faster (the drawing budget below), a pause that keeps what arrives meanwhile, and the
// recent history under it so the log never starts empty.

import { historyQuery, subscription } from "./filters.js";
import { EventList } from "./vlist.js";
import { $ } from "./util.js";

const BACKLOG = 200; // stored events shown when the filters change
const HELD = 20000; // events kept while paused; older ones are dropped (and counted)
// Drawing budget: while drawing took less than this share of the last WINDOW ms, an event is
// drawn as it arrives; beyond it, what arrives is drawn once per animation frame, in batches.
const WINDOW = 250;
const BUDGET = 0.1;
const count = new Intl.NumberFormat().format; // toLocaleString() costs more, once per event

export class LiveView {
  constructor({ api, live, catalog, onOpen, onSelection, onEvents }) {
    this.api = api;
    this.live = live;
    this.catalog = catalog;
    this.onEvents = onEvents; // every event received (chart, pop-ups)
    this.list = new EventList($("#live-list"), {
      label: "Live events, newest first",
      onOpen,
      onSelection,
      onRendered: (events, time) => window.linkserverConsole?.rendered?.(events, time),
    });
    this.state = null;
    this.paused = false;
    this.held = [];
    this.heldDropped = 0;
    this.incoming = [];
    this.flushing = false;
    this.windowStart = 0;
    this.windowCost = 0;
    this.gaps = 0;
    this.received = 0;
    this.error = null;
    this.loading = false;
    this.pauseButton = $("#live-pause");
    this.pauseButton.addEventListener("click", () => this.setPaused(!this.paused));
    this.status = $("#live-status");
  }

  // New filters: the list starts again from the newest stored matches, then live events.
  // Until the subscription for these filters is live the status line says so ("loading"),
  // and a call overtaken by a newer one (filters changed again meanwhile) changes nothing:
  // "0 shown" always means "0 shown, and what comes now is shown".
  async show(state) {
    this.state = state;
    this.list.clear();
    this.held = [];
    this.incoming = [];
    this.error = null;
    this.loading = true;
    this.#showStatus();
    let resume = null;
    try {
      const page = await this.api.call("GET", "/history", null, { query: { ...historyQuery(state), limit: BACKLOG } });
      if (this.state !== state) return null;
      const events = page.events.filter((e) => this.#keep(e)).reverse();
      this.#annotate(events);
      this.list.prepend(events);
      if (page.events.length) resume = page.events[0].id;
      // Nothing stored matches: what is stored from now on is replayed, so an event fired
      // between the read and the subscription is not lost (only where the subscription
      // matches exactly what the read did: no acknowledgement state, no time range).
      else if (!state.ack && !state.since && !state.until) resume = "0";
    } catch (error) {
      if (this.state !== state) return null;
      this.error = error;
    }
    try {
      await this.live.subscribe("live", subscription(state), (kind, payload) => this.#push(kind, payload), resume);
    } catch (error) {
      if (this.state !== state) return null;
      this.error = error;
    }
    if (this.state !== state) return null;
    this.loading = false;
    this.#showStatus();
    return this.error;
  }

  stop() {
    this.live.unsubscribe("live");
  }

  setPaused(paused) {
    this.paused = paused;
    this.pauseButton.textContent = paused ? "Resume" : "Pause";
    this.pauseButton.setAttribute("aria-pressed", String(paused));
    if (!paused && this.held.length) {
      const held = this.held;
      this.held = [];
      this.list.prepend(held);
    }
    this.#showStatus();
  }

  #keep(event) {
    const ack = this.state.ack;
    if (!ack) return true;
    const acked = (event.acknowledgements || []).length > 0;
    if (ack === "yes") return acked;
    if (ack === "no") return !acked;
    const definition = this.catalog.definitionNow(event.context, event.name);
    return !acked && (definition === undefined || (definition && definition.requires_acknowledgement));
  }

  #annotate(events) {
    for (const event of events) {
      const definition = this.catalog.definitionNow(event.context, event.name);
      if (definition) event.requiresAck = definition.requires_acknowledgement;
      else if (definition === undefined)
        this.catalog.definition(event.context, event.name).then((d) => {
          if (d && d.requires_acknowledgement) {
            event.requiresAck = true;
            this.list.draw();
          }
        });
    }
  }

  #push(kind, payload) {
    if (kind === "gap") {
      this.gaps += payload.dropped;
      this.#showStatus();
      return;
    }
    this.received += payload.length;
    this.onEvents(payload);
    for (const event of payload) this.incoming.push(event);
    if (this.flushing) return;
    if (this.#idle()) {
      this.#flush(true);
    } else {
      this.flushing = true;
      requestAnimationFrame(() => this.#flush(false)); // many messages, one list update per frame
    }
  }

  #idle() {
    const now = performance.now();
    if (now - this.windowStart > WINDOW) {
      this.windowStart = now;
      this.windowCost = 0;
    }
    return this.windowCost < WINDOW * BUDGET;
  }

  #flush(now) {
    const started = performance.now();
    this.flushing = false;
    const events = this.incoming.filter((e) => this.#keep(e));
    this.incoming = [];
    this.#annotate(events);
    if (this.paused) {
      this.held.push(...events);
      if (this.held.length > HELD) {
        this.heldDropped += this.held.length - HELD;
        this.held.splice(0, this.held.length - HELD);
      }
    } else {
      this.list.prepend(events, now);
    }
    this.#showStatus();
    this.windowCost += performance.now() - started;
  }

  #showStatus() {
    const parts = [this.loading ? "loading" : `${count(this.list.length)} shown`];
    if (this.paused) parts.push(`paused: ${count(this.held.length)} waiting`);
    if (this.heldDropped) parts.push(`${count(this.heldDropped)} dropped while paused`);
    if (this.gaps) parts.push(`${count(this.gaps)} missed (too fast); History has them`);
    if (this.error) parts.push(`error: ${this.error.message.split("\n")[0]}`);
    const text = parts.join(" · ");
    if (this.status.textContent !== text) this.status.textContent = text;
  }

  update(event) {
    this.list.update(event);
  }
}
