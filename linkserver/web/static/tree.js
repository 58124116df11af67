// The context tree (what the user may see) and, for the chosen context, its definitions
// (level, persistence, retention in effect, format) and, under devices, each device's state
// (its state machine's) and connection.

import { dataTable } from "./detail.js";
import { $, clear, displayPath, el, fullTime } from "./util.js";

const CONNECTION_EVENTS = ["connected", "disconnected"];

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const units = [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]];
  for (const [unit, size] of units) if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
  return `${seconds}s`;
}

export class TreeView {
  constructor(api, catalog) {
    this.api = api;
    this.catalog = catalog;
    this.root = $("#tree");
    this.detail = $("#context-detail");
    this.selected = null;
    this.root.addEventListener("keydown", (e) => this.#key(e));
  }

  async show() {
    const tree = await this.catalog.loadTree();
    clear(this.root).append(this.#node(tree, 1, true));
    const first = this.root.querySelector('[role="treeitem"]');
    if (first) first.tabIndex = 0;
    if (!this.selected) this.select(first);
  }

  #node(node, depth, expanded) {
    const children = node.children || [];
    const label = el("span", { class: "label" }, node.path === "" ? "root" : node.name);
    const item = el("li", {
      role: "treeitem",
      tabindex: "-1",
      "aria-level": depth,
      "aria-expanded": children.length ? String(expanded) : null,
      "data-path": node.path,
      "aria-selected": "false",
    }, label);
    label.addEventListener("click", (e) => {
      e.stopPropagation(); // a click opens a closed context; on the chosen one it toggles
      if (children.length) this.#toggle(item, item.getAttribute("aria-selected") === "true" ? undefined : true);
      this.select(item);
    });
    if (children.length) {
      const group = el("ul", { role: "group" }, children.map((c) => this.#node(c, depth + 1, depth < 2)));
      group.hidden = !expanded;
      item.append(group);
    }
    return item;
  }

  #toggle(item, open) {
    const group = item.querySelector(":scope > ul");
    if (!group) return;
    const expanded = open ?? item.getAttribute("aria-expanded") !== "true";
    item.setAttribute("aria-expanded", String(expanded));
    group.hidden = !expanded;
  }

  #visibleItems() {
    return [...this.root.querySelectorAll('[role="treeitem"]')].filter((n) => !n.parentElement.closest("ul[hidden]"));
  }

  #key(e) {
    const items = this.#visibleItems();
    const at = items.indexOf(document.activeElement);
    if (at < 0) return;
    const item = items[at];
    const go = (next) => {
      if (!next) return;
      e.preventDefault();
      this.select(next);
    };
    if (e.key === "ArrowDown") go(items[at + 1]);
    else if (e.key === "ArrowUp") go(items[at - 1]);
    else if (e.key === "ArrowRight") {
      e.preventDefault();
      if (item.getAttribute("aria-expanded") === "false") this.#toggle(item, true);
      else go(items[at + 1]);
    } else if (e.key === "ArrowLeft") {
      e.preventDefault();
      if (item.getAttribute("aria-expanded") === "true") this.#toggle(item, false);
      else go(item.parentElement.closest('[role="treeitem"]'));
    } else if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      this.#toggle(item);
    }
  }

  async select(item) {
    if (!item) return;
    for (const node of this.root.querySelectorAll('[aria-selected="true"]')) {
      node.setAttribute("aria-selected", "false");
      node.tabIndex = -1;
    }
    item.setAttribute("aria-selected", "true");
    item.tabIndex = 0;
    item.focus({ preventScroll: false });
    const path = item.dataset.path;
    this.selected = path;
    let context;
    try {
      context = await this.catalog.context(path);
    } catch (error) {
      clear(this.detail).append(el("p", { class: "error" }, error.message));
      return;
    }
    if (this.selected !== path) return;
    this.#render(context);
    if (path === "devices" || path.startsWith("devices.")) this.#devices(path);
  }

  #render(context) {
    const box = clear(this.detail);
    box.append(el("h3", {}, displayPath(context.path)));
    if (context.description) box.append(el("p", {}, context.description));
    if (!context.events.length) {
      box.append(el("p", { class: "muted" }, "No definitions you may see here."));
    } else {
      box.append(
        el(
          "table",
          { class: "definitions" },
          el(
            "thead",
            {},
            el("tr", {}, ["Event", "Level", "Stored", "Kept", "Receive", "Fire", "Ack", "Fields"].map((h) => el("th", { scope: "col" }, h))),
          ),
          el(
            "tbody",
            {},
            context.events.map((d) =>
              el(
                "tr",
                {},
                el("th", { scope: "row", title: [d.description, d.help].filter(Boolean).join("\n\n") }, d.name),
                el("td", {}, el("span", { class: "level", "data-level": d.level }, d.level)),
                el("td", {}, d.persistent ? "yes" : "no"),
                el("td", { title: d.retention ? `from the ${d.retention.source}` : null }, d.retention ? duration(d.retention.seconds) : "—"),
                el("td", {}, d.permissions),
                el("td", {}, d.fire_permissions),
                el("td", {}, d.requires_acknowledgement ? "required" : ""),
                el("td", {}, d.format.fields.map((f) => `${f.name}: ${f.type}`).join(", ")),
              ),
            ),
          ),
        ),
      );
    }
    box.append(el("div", { id: "devices" }));
  }

  // Each device's state from its state machine (GET /resources: what the server keeps, the
  // actions allowed now) and its last connection event, from history.
  async #devices(path) {
    const mask = path === "devices" ? "devices.*" : path;
    let page, resources;
    try {
      [page, resources] = await Promise.all([
        this.api.call("GET", "/history", null, { query: { mask: [mask], event: CONNECTION_EVENTS, limit: 2000 } }),
        this.api.call("GET", "/resources", null, { query: { mask: [mask] } }).then((a) => a.resources, () => []),
      ]);
    } catch {
      return;
    }
    if (this.selected !== path) return;
    const devices = new Map();
    for (const child of path === "devices" ? this.catalog.paths.filter((p) => /^devices\.[^.]+$/.test(p)) : [path]) {
      devices.set(child, { state: "—", allowed: "", connection: "—", since: null });
    }
    const blank = () => ({ state: "—", allowed: "", connection: "—", since: null });
    for (const resource of resources) {
      const device = devices.get(resource.path) || blank();
      devices.set(resource.path, device);
      device.state = resource.state;
      device.allowed = resource.actions.join(", ");
    }
    for (const event of page.events) {
      const device = devices.get(event.context) || blank();
      devices.set(event.context, device);
      if (device.connection === "—") {
        device.connection = event.name;
        device.since = event.created;
      }
    }
    const host = $("#devices");
    if (!host || !devices.size) return;
    const rows = [...devices].sort(([a], [b]) => (a < b ? -1 : 1));
    host.append(
      el("h3", {}, "Devices"),
      dataTable(
        rows.map(([p, d]) => ({
          device: p,
          state: d.state,
          actions: d.allowed,
          connection: d.connection,
          since: d.since ? fullTime(d.since) : "",
        })),
        null,
      ),
    );
    const table = host.querySelector("table");
    table.classList.add("devices");
    for (const [index, [p]] of rows.entries()) table.tBodies[0].rows[index].dataset.device = p;
  }
}
