// The filter bar: its state, kept in the page's URL (#/view?mask=...&filter=...) so a view
// can be bookmarked and shared; the filter expression checked as it is typed.

import { $, clear, el, maskMatches } from "./util.js";

export const KEYS = ["mask", "event", "level", "ack", "since", "until", "filter"];

export function readHash() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const params = new URLSearchParams(query);
  const state = {};
  for (const key of KEYS) state[key] = params.get(key) || "";
  return { view: path || "live", state };
}

export function writeHash(view, state, { push = false } = {}) {
  const params = new URLSearchParams();
  for (const key of KEYS) if (state[key]) params.set(key, state[key]);
  const text = params.toString();
  const hash = `#/${view}${text ? "?" + text : ""}`;
  if (location.hash === hash) return;
  if (push) history.pushState(null, "", hash);
  else history.replaceState(null, "", hash);
}

const isoOf = (local) => (local ? new Date(local).toISOString() : null);

// GET /history parameters for a state.
export function historyQuery(state) {
  const query = {
    mask: [state.mask || "**"],
    event: state.event && state.event !== "*" ? [state.event] : [],
    min_level: state.level || null,
    filter: state.filter || null,
    since: isoOf(state.since),
    until: isoOf(state.until),
  };
  if (state.ack === "yes") query.acknowledged = true;
  if (state.ack === "no") query.acknowledged = false;
  if (state.ack === "todo") {
    query.acknowledged = false;
    query.requires_acknowledgement = true;
  }
  return query;
}

// The WebSocket subscription for a state (acknowledgement state is checked in the page).
export function subscription(state) {
  const spec = { mask: state.mask || "**", event: state.event || "*" };
  if (state.filter) spec.filter = state.filter;
  if (state.level) spec.min_level = state.level;
  return spec;
}

export const isDefault = (state) =>
  (!state.mask || state.mask === "**") && (!state.event || state.event === "*") && !state.filter && !state.level;

export class FilterBar {
  constructor(api, catalog, { onApply }) {
    this.api = api;
    this.catalog = catalog;
    this.onApply = onApply;
    this.form = $("#filters");
    this.errorBox = $("#f-filter-error");
    this.filterInput = $("#f-filter");
    this.checkTimer = null;
    this.checkSeq = 0;
    this.valid = true;
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.apply();
    });
    this.form.addEventListener("reset", () => setTimeout(() => this.apply(), 0));
    this.filterInput.addEventListener("input", () => this.scheduleCheck());
    $("#f-mask").addEventListener("change", () => {
      this.suggestEvents();
      this.scheduleCheck();
    });
    $("#f-event").addEventListener("change", () => this.scheduleCheck());
  }

  get state() {
    const data = new FormData(this.form);
    const state = {};
    for (const key of KEYS) state[key] = String(data.get(key) || "").trim();
    return state;
  }

  set state(state) {
    for (const key of KEYS) this.form.elements[key].value = state[key] || "";
    this.showError(null);
  }

  async apply() {
    const ok = await this.check();
    if (ok) this.onApply(this.state);
  }

  fillCompletion() {
    const masks = clear($("#f-mask-list"));
    for (const mask of this.catalog.maskSuggestions()) masks.append(el("option", { value: mask }));
    this.suggestEvents();
  }

  // Event names of the contexts the mask matches (their definitions, fetched once).
  async suggestEvents() {
    const mask = $("#f-mask").value.trim() || "**";
    const paths = this.catalog.paths.filter((p) => maskMatches(mask, p)).slice(0, 40);
    const names = new Set();
    await Promise.all(
      paths.map(async (path) => {
        try {
          for (const name of (await this.catalog.context(path)).byName.keys()) names.add(name);
        } catch {
          /* not visible */
        }
      }),
    );
    const list = clear($("#f-event-list"));
    for (const name of [...names].sort()) list.append(el("option", { value: name }));
  }

  scheduleCheck() {
    clearTimeout(this.checkTimer);
    this.checkTimer = setTimeout(() => this.check(), 250);
  }

  // POST /filters/check with the mask and event in the form: the server's own check.
  async check() {
    clearTimeout(this.checkTimer);
    const state = this.state;
    const seq = ++this.checkSeq;
    if (!state.filter) {
      this.showError(null);
      return true;
    }
    const body = { filter: state.filter, mask: [state.mask || "**"] };
    if (state.event && state.event !== "*") body.event = [state.event];
    try {
      await this.api.call("POST", "/filters/check", body);
      if (seq === this.checkSeq) this.showError(null);
      return true;
    } catch (error) {
      if (seq === this.checkSeq) this.showError(error, state.filter);
      return false;
    }
  }

  // The message under the field, with the expression and a marker at the column.
  showError(error, text = "") {
    const box = clear(this.errorBox);
    this.valid = !error;
    this.filterInput.setAttribute("aria-invalid", String(!!error));
    if (!error) return;
    const message = String(error.message).split("\n")[0].replace(/^column \d+: /, "");
    box.append(el("span", { class: "message", role: "alert" }, message));
    if (error.column) {
      const at = Math.max(0, Math.min(text.length, error.column - 1));
      box.append(
        el(
          "code",
          { class: "where" },
          text.slice(0, at),
          el("mark", {}, text.slice(at, at + 1) || " "),
          text.slice(at + 1),
        ),
      );
    }
  }
}
