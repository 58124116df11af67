// A virtual list of events, newest first: only the rows in view exist in the DOM (a pool
// reused as it scrolls), so 20,000 rows cost what 40 do. Rows are added in batches by
// prepend()/append() and drawn at most once per animation frame.

import { ackText, displayPath, el, shortTime, summary } from "./util.js";

const ROW = 28; // px, also in console.css (.row)
const OVERSCAN = 6;

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
    this.pool = [];
    this.viewport = el("div", {
      class: "vlist",
      role: "listbox",
      tabindex: "0",
      "aria-label": label,
      "aria-multiselectable": "true",
    });
    this.spacer = el("div", { class: "spacer", "aria-hidden": "true" });
    this.empty = el("p", { class: "empty" }, "No events yet.");
    this.viewport.append(this.spacer, this.empty);
    host.append(this.viewport);
    this.viewport.addEventListener("scroll", () => this.draw());
    this.viewport.addEventListener("keydown", (e) => this.#key(e));
    this.viewport.addEventListener("click", (e) => this.#click(e));
    this.viewport.addEventListener("dblclick", (e) => {
      const index = this.#indexOf(e.target);
      if (index >= 0) this.onOpen(this.at(index));
    });
    new ResizeObserver(() => this.draw()).observe(this.viewport);
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
    const atTop = this.viewport.scrollTop < ROW / 2;
    let added = 0;
    for (const event of events) {
      if (this.byId.has(event.id)) continue;
      this.items.push(event);
      this.byId.set(event.id, event);
      this.fresh.push(event);
      added++;
    }
    this.#trim();
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
    this.viewport.scrollTop = 0;
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
    this.spacer.style.height = `${count * ROW}px`;
    if (this.#keepScroll) {
      this.viewport.scrollTop = Math.min(this.viewport.scrollTop + this.#keepScroll * ROW, count * ROW);
      this.#keepScroll = 0;
    }
    this.empty.hidden = count > 0;
    const height = this.viewport.clientHeight || ROW * 20;
    const first = Math.max(0, Math.floor(this.viewport.scrollTop / ROW) - OVERSCAN);
    const last = Math.min(count, Math.ceil((this.viewport.scrollTop + height) / ROW) + OVERSCAN);
    const needed = last - first;
    while (this.pool.length < needed) {
      const row = this.#makeRow();
      this.pool.push(row);
      this.viewport.append(row.node);
    }
    for (let i = 0; i < this.pool.length; i++) {
      const row = this.pool[i];
      if (i >= needed) {
        row.node.hidden = true;
        row.id = null;
        continue;
      }
      this.#fill(row, first + i);
    }
    const active = this.active >= 0 && this.active < count ? this.at(this.active) : null;
    if (active) this.viewport.setAttribute("aria-activedescendant", `row-${active.id}`);
    else this.viewport.removeAttribute("aria-activedescendant");
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
    const node = el("div", { class: "row", role: "option" }, ...Object.values(cells));
    return { node, cells, id: null, version: null };
  }

  #fill(row, index) {
    const event = this.at(index);
    const { node, cells } = row;
    node.hidden = false;
    node.style.transform = `translateY(${index * ROW}px)`;
    node.dataset.index = index;
    const selected = this.selected.has(event.id);
    node.setAttribute("aria-selected", String(selected));
    node.classList.toggle("active", index === this.active);
    const version = `${event.acknowledgements ? event.acknowledgements.length : 0}/${!!event.requiresAck}`;
    if (row.id === event.id && row.version === version) return;
    row.id = event.id;
    row.version = version;
    node.id = `row-${event.id}`;
    node.dataset.id = event.id;
    node.dataset.level = event.level;
    cells.level.textContent = event.level;
    cells.time.textContent = shortTime(event.created);
    cells.time.dateTime = event.created;
    cells.context.textContent = displayPath(event.context);
    cells.name.textContent = event.name;
    cells.text.textContent = summary(event);
    const ack = ackText(event);
    cells.ack.textContent = ack || (event.requiresAck ? "to acknowledge" : "");
    cells.ack.classList.toggle("todo", !ack && !!event.requiresAck);
  }

  #indexOf(target) {
    const node = target.closest(".row");
    return node ? Number(node.dataset.index) : -1;
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
    const page = Math.max(1, Math.floor(this.viewport.clientHeight / ROW) - 1);
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
    const view = this.viewport;
    if (top < view.scrollTop) view.scrollTop = top;
    else if (top + ROW > view.scrollTop + view.clientHeight) view.scrollTop = top + ROW - view.clientHeight;
  }
}
