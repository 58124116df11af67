// A virtual list of events, newest first: only the rows in view exist in the DOM (a pool
// reused as it scrolls), so 20,000 rows cost what 40 do. Rows are added in batches by
// prepend()/append() and drawn at the next animation frame, or at once when asked.
//
// What a new event costs on screen is one row: each event has a position that never changes
// while it is in the list (the newest is ``top``, the one under it ``top - 1``, ...), rows sit
// at their event's position inside one "track", and the track alone moves down when events
// come in on top. A row's text is written when it gets an event, and not again until that
// event changes (an acknowledgement). Nothing here reads layout: scrollTop and the height are
// kept from the scroll and resize events, so no render forces a layout in the middle of a task.

import { ackText, displayPath, el, shortTime, summary } from "./util.js";

const ROW = 28; // px, also in console.css (.row)
const OVERSCAN = 6;
const REBASE = 100000; // positions from the track's origin stay below 2.8 million px

export class EventList {
  // options: {label, capacity, onOpen(event), onSelection(ids), onRendered(events, time)}
  constructor(host, { label, capacity = 20000, onOpen = () => {}, onSelection = () => {}, onRendered = null } = {}) {
    this.capacity = capacity;
    this.onOpen = onOpen;
    this.onSelection = onSelection;
    this.onRendered = onRendered;
    this.items = []; // oldest first; shown reversed (newest at the top)
    this.byId = new Map();
    this.selected = new Set();
    this.active = -1; // index in display order
    this.anchor = -1;
    this.fresh = []; // added since the last frame, for onRendered
    this.scheduled = false;
    this.pool = []; // every row made, in no order
    this.bound = new Map(); // event id -> the row showing it
    this.rowOf = new WeakMap(); // row node -> row
    this.top = 0; // the newest event's position; the event at display index i is at top - i
    this.base = 0; // the position at the track's origin
    this.trackShift = null;
    this.descendant = null;
    this.spacerHeight = -1;
    this.scrollTop = 0; // kept from scroll events: reading it after a DOM write forces a layout
    this.height = ROW * 20; // the viewport's height, kept from a ResizeObserver
    this.viewport = el("div", {
      class: "vlist",
      role: "listbox",
      tabindex: "0",
      "aria-label": label,
      "aria-multiselectable": "true",
    });
    this.spacer = el("div", { class: "spacer", "aria-hidden": "true" });
    this.empty = el("p", { class: "empty" }, "No events yet.");
    this.track = el("div", { class: "track" });
    this.viewport.append(this.spacer, this.empty, this.track);
    host.append(this.viewport);
    this.viewport.addEventListener("scroll", () => {
      this.scrollTop = this.viewport.scrollTop;
      this.draw();
    });
    this.viewport.addEventListener("keydown", (e) => this.#key(e));
    this.viewport.addEventListener("click", (e) => this.#click(e));
    this.viewport.addEventListener("dblclick", (e) => {
      const index = this.#indexOf(e.target);
      if (index >= 0) this.onOpen(this.at(index));
    });
    new ResizeObserver(([entry]) => {
      // layout is clean here; a list shown again may have lost its scroll offset while hidden
      this.height = entry.contentRect.height || ROW * 20;
      this.scrollTop = this.viewport.scrollTop;
      this.draw();
    }).observe(this.viewport);
  }

  get length() {
    return this.items.length;
  }

  at(index) {
    return this.items[this.items.length - 1 - index];
  }

  // New events (oldest first, as they came): to the top. The rows in view stay where
  // they are unless the list was scrolled to the top. ``now``: drawn before returning
  // instead of at the next animation frame.
  prepend(events, now = false) {
    if (events.length === 0) return;
    const atTop = this.scrollTop < ROW / 2;
    let added = 0;
    for (const event of events) {
      if (this.byId.has(event.id)) continue;
      this.items.push(event);
      this.byId.set(event.id, event);
      this.fresh.push(event);
      added++;
    }
    this.#trim();
    this.top += added;
    if (this.active >= 0) this.active += added;
    if (this.anchor >= 0) this.anchor += added;
    if (!atTop) this.#keepScroll += added;
    if (now) this.#render();
    else this.draw();
  }

  // Older events (newest first, as a history page comes): to the bottom.
  append(events) {
    const older = events.filter((e) => !this.byId.has(e.id)).reverse();
    for (const event of older) this.byId.set(event.id, event);
    this.items.unshift(...older);
    this.draw();
  }

  clear() {
    this.items = [];
    this.byId.clear();
    this.selected.clear();
    this.active = this.anchor = -1;
    this.fresh = [];
    this.top = 0;
    this.viewport.scrollTop = this.scrollTop = 0;
    this.onSelection(this.selected);
    this.draw();
  }

  // An event changed (acknowledged): its row shows the new state.
  update(event) {
    const old = this.byId.get(event.id);
    if (!old) return false;
    Object.assign(old, event);
    this.draw();
    return true;
  }

  #keepScroll = 0;

  #trim() {
    const over = this.items.length - this.capacity;
    if (over <= 0) return 0;
    for (const event of this.items.splice(0, over)) {
      this.byId.delete(event.id);
      this.selected.delete(event.id);
    }
    return over;
  }

  draw() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => this.#render());
  }

  #render() {
    this.scheduled = false;
    const count = this.items.length;
    const total = count * ROW;
    if (total !== this.spacerHeight) {
      this.spacerHeight = total;
      this.spacer.style.height = `${total}px`;
    }
    if (this.#keepScroll) {
      this.scrollTop = Math.max(0, Math.min(this.scrollTop + this.#keepScroll * ROW, total - this.height));
      this.viewport.scrollTop = this.scrollTop;
      this.#keepScroll = 0;
    }
    if (this.empty.hidden !== count > 0) this.empty.hidden = count > 0;
    const first = Math.max(0, Math.floor(this.scrollTop / ROW) - OVERSCAN);
    const last = Math.min(count, Math.ceil((this.scrollTop + this.height) / ROW) + OVERSCAN);
    if (Math.abs(this.top - this.base) > REBASE) this.base = this.top; // every row moves once
    const shift = (this.top - this.base) * ROW;
    if (shift !== this.trackShift) {
      this.trackShift = shift;
      this.track.style.transform = `translateY(${shift}px)`;
    }
    const shown = new Map();
    for (let index = first; index < last; index++) shown.set(this.at(index).id, index);
    const free = [];
    for (const row of this.pool) {
      if (row.id === null || !shown.has(row.id)) free.push(row);
    }
    for (const [id, index] of shown) {
      let row = this.bound.get(id);
      if (row === undefined || row.id !== id) {
        row = free.pop() || this.#makeRow();
        if (row.id !== null) this.bound.delete(row.id);
        row.id = id;
        this.bound.set(id, row);
      }
      this.#fill(row, index);
    }
    for (const row of free) {
      if (row.id !== null && !shown.has(row.id)) {
        this.bound.delete(row.id);
        row.id = null;
      }
      if (row.id === null && !row.node.hidden) this.#blank(row);
    }
    const active = this.active >= 0 && this.active < count ? this.at(this.active) : null;
    const descendant = active ? `row-${active.id}` : null;
    if (descendant !== this.descendant) {
      this.descendant = descendant;
      if (descendant) this.viewport.setAttribute("aria-activedescendant", descendant);
      else this.viewport.removeAttribute("aria-activedescendant");
    }
    if (this.fresh.length) {
      const fresh = this.fresh;
      this.fresh = [];
      if (this.onRendered) this.onRendered(fresh, performance.timeOrigin + performance.now());
    }
  }

  #makeRow() {
    const cells = {
      level: el("span", { class: "level" }),
      time: el("time", { class: "time" }),
      context: el("span", { class: "context" }),
      name: el("span", { class: "name" }),
      text: el("span", { class: "text" }),
      ack: el("span", { class: "ack" }),
    };
    const node = el("div", { class: "row", role: "option", "aria-selected": "false" }, ...Object.values(cells));
    this.track.append(node);
    const row = { node, cells, id: null, shows: null, version: null, pos: 0, y: null, selected: false, active: false };
    this.pool.push(row);
    this.rowOf.set(node, row);
    return row;
  }

  // Each DOM write only when its value changed.
  #fill(row, index) {
    const event = this.at(index);
    const { node, cells } = row;
    if (node.hidden) node.hidden = false;
    row.pos = this.top - index;
    const y = (row.pos - this.base) * -ROW;
    if (row.y !== y) {
      row.y = y;
      node.style.top = `${y}px`; // not a transform: one paint property node for all the rows
    }
    const selected = this.selected.has(event.id);
    if (row.selected !== selected) {
      row.selected = selected;
      node.setAttribute("aria-selected", String(selected));
    }
    const active = index === this.active;
    if (row.active !== active) {
      row.active = active;
      node.classList.toggle("active", active);
    }
    const version = `${event.acknowledgements ? event.acknowledgements.length : 0}/${!!event.requiresAck}`;
    if (row.shows === event && row.version === version) return;
    if (row.shows !== event) {
      row.shows = event;
      node.id = `row-${event.id}`;
      node.dataset.id = event.id;
      node.dataset.level = event.level;
      cells.level.textContent = event.level;
      cells.time.textContent = shortTime(event.created);
      cells.time.dateTime = event.created;
      cells.context.textContent = displayPath(event.context);
      cells.name.textContent = event.name;
      cells.text.textContent = summary(event);
    }
    row.version = version;
    const ack = ackText(event);
    cells.ack.textContent = ack || (event.requiresAck ? "to acknowledge" : "");
    cells.ack.classList.toggle("todo", !ack && !!event.requiresAck);
  }

  // A row without an event (fewer events than rows in view) is hidden and keeps nothing of
  // the event it showed: no id twice in the page, no stale text for a search to find.
  #blank(row) {
    const { node, cells } = row;
    node.hidden = true;
    node.removeAttribute("id");
    delete node.dataset.id;
    delete node.dataset.level;
    for (const cell of Object.values(cells)) cell.textContent = "";
    row.shows = row.version = null;
  }

  #indexOf(target) {
    const row = this.rowOf.get(target.closest(".row"));
    return row && row.id !== null ? this.top - row.pos : -1;
  }

  #click(e) {
    const index = this.#indexOf(e.target);
    if (index < 0) return;
    this.viewport.focus({ preventScroll: true });
    if (e.shiftKey && this.anchor >= 0) this.#selectRange(this.anchor, index, e.ctrlKey || e.metaKey);
    else if (e.ctrlKey || e.metaKey) this.#toggle(index);
    else this.#selectOnly(index);
    this.active = index;
    if (!e.shiftKey) this.anchor = index;
    this.draw();
    if (!e.shiftKey && !e.ctrlKey && !e.metaKey) this.onOpen(this.at(index));
  }

  #selectOnly(index) {
    this.selected = new Set([this.at(index).id]);
    this.onSelection(this.selected);
  }

  #toggle(index) {
    const id = this.at(index).id;
    if (this.selected.has(id)) this.selected.delete(id);
    else this.selected.add(id);
    this.onSelection(this.selected);
  }

  #selectRange(from, to, keep) {
    if (!keep) this.selected.clear();
    for (let i = Math.min(from, to); i <= Math.max(from, to); i++) this.selected.add(this.at(i).id);
    this.onSelection(this.selected);
  }

  selectAll() {
    this.selected = new Set(this.items.map((e) => e.id));
    this.onSelection(this.selected);
    this.draw();
  }

  selectedEvents() {
    return [...this.selected].map((id) => this.byId.get(id)).filter(Boolean);
  }

  #key(e) {
    const count = this.items.length;
    if (count === 0) return;
    const page = Math.max(1, Math.floor(this.height / ROW) - 1);
    const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page, Home: -count, End: count };
    if (e.key in moves) {
      e.preventDefault();
      const next = Math.max(0, Math.min(count - 1, (this.active < 0 ? -1 : this.active) + moves[e.key]));
      if (e.shiftKey) this.#selectRange(this.anchor < 0 ? next : this.anchor, next, false);
      else this.anchor = next;
      this.active = next;
      this.#reveal(next);
      this.draw();
    } else if (e.key === " " && this.active >= 0) {
      e.preventDefault();
      this.#toggle(this.active);
      this.draw();
    } else if (e.key === "Enter" && this.active >= 0) {
      e.preventDefault();
      this.onOpen(this.at(this.active));
    } else if (e.key === "a" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      this.selectAll();
    }
  }

  #reveal(index) {
    const top = index * ROW;
    if (top < this.scrollTop) this.scrollTop = top;
    else if (top + ROW > this.scrollTop + this.height) this.scrollTop = top + ROW - this.height;
    else return;
    this.viewport.scrollTop = this.scrollTop;
  }
}
