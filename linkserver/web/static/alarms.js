// The alarm list: GET /api/v1/alarms (events folded by reduction key: open, acknowledged,
// cleared; count, first and last), with the filter bar's mask, event, level and expression
// and a state choice, paged by cursor; acknowledge or clear the selected alarms. While shown it
// follows the alarmChanged events of the mask (docs/alarms.md): a changed alarm is read again and
// its row replaced (or added at the top, or dropped when its state is no longer listed).
// A server without the alarm API (its /openapi.json does not list it) gets a note instead.

import { $, clear, displayPath, el, fullTime } from "./util.js";

const PAGE = 200;

export class AlarmsView {
  constructor(api, acknowledger, { onOpen, live = null }) {
    this.api = api;
    this.live = live;
    this.acknowledger = acknowledger;
    this.onOpen = onOpen;
    this.body = $("#alarms-body");
    this.available = null;
    this.alarms = [];
    this.cursor = null;
    this.selected = new Set();
    this.state = null;
  }

  async #hasApi() {
    if (this.available === null) {
      const document_ = await fetch("/openapi.json", { cache: "no-store" }).then((r) => r.json(), () => ({}));
      this.available = Object.keys(document_.paths || {}).some((p) => p.startsWith("/api/v1/alarms"));
    }
    return this.available;
  }

  async show(state) {
    this.state = state;
    const box = clear(this.body);
    if (!(await this.#hasApi())) {
      box.append(
        el(
          "p",
          { class: "placeholder" },
          "This server has no alarm list: alarms (events folded by reduction key, open / acknowledged / cleared) " +
            "appear here on a server that offers them. Meanwhile History with “alerts to acknowledge” lists what is open.",
        ),
      );
      return null;
    }
    this.alarms = [];
    this.cursor = null;
    this.selected.clear();
    this.#follow(state);
    const states = el(
      "fieldset",
      { class: "states" },
      el("legend", {}, "State"),
      ["open", "acknowledged", "cleared"].map((name) =>
        el(
          "label",
          {},
          el("input", {
            type: "checkbox",
            name: "state",
            value: name,
            checked: (this.states || ["open", "acknowledged"]).includes(name),
            onchange: () => {
              this.states = [...this.body.querySelectorAll("input[name=state]:checked")].map((i) => i.value);
              this.show(this.state);
            },
          }),
          ` ${name}`,
        ),
      ),
    );
    this.status = el("span", { class: "muted", role: "status" });
    this.more = el("button", { type: "button", disabled: true, onclick: () => this.#page() }, "Load more");
    this.ackButton = el("button", { type: "button", disabled: true, onclick: () => this.#act("acknowledge") }, "Acknowledge selected");
    this.clearButton = el("button", { type: "button", disabled: true, onclick: () => this.#act("clear") }, "Clear selected");
    this.tbody = el("tbody");
    box.append(
      el("div", { class: "toolbar" }, states, this.status, this.more, el("span", { class: "spacer-flex" }), this.ackButton, this.clearButton),
      el(
        "table",
        { class: "alarms" },
        el(
          "thead",
          {},
          el("tr", {}, ["", "State", "Level", "Context", "Event", "Message", "Count", "First", "Last", "Acknowledged"].map((h) =>
            el("th", { scope: "col" }, h),
          )),
        ),
        this.tbody,
      ),
    );
    return this.#page();
  }

  // Stop following alarmChanged (the view was left).
  hide() {
    if (this.live) this.live.unsubscribe("alarms").catch(() => null);
  }

  #follow(state) {
    if (!this.live) return;
    const spec = { mask: state.mask || "**", event: "alarmChanged" };
    if (state.level) spec.min_level = state.level;
    this.live.subscribe("alarms", spec, (kind, events) => kind === "events" && this.#changed(events)).catch(() => null);
  }

  async #changed(events) {
    const ids = [...new Set(events.map((e) => String((e.data[0] || {}).id)))];
    const states = this.states || ["open", "acknowledged"];
    for (const id of ids) {
      let alarm;
      try {
        alarm = (await this.api.call("GET", `/alarms/${id}`)).alarm;
      } catch {
        continue; // gone (purged) or no longer visible
      }
      const old = this.tbody.querySelector(`tr[data-id="${id}"]`);
      const wanted = states.includes(alarm.state) && (!this.state.event || this.state.event === "*" || alarm.name === this.state.event);
      const index = this.alarms.findIndex((a) => String(a.id) === id);
      if (!wanted) {
        if (old) old.remove();
        if (index >= 0) this.alarms.splice(index, 1);
        this.selected.delete(alarm.id);
      } else if (old) {
        old.replaceWith(this.#row(alarm));
        this.alarms[index] = alarm;
      } else if (!this.state.filter) {
        this.tbody.prepend(this.#row(alarm));
        this.alarms.unshift(alarm);
      }
    }
    this.status.textContent = `${this.alarms.length} alarms${this.cursor ? " (more)" : ""}`;
  }

  #query() {
    const s = this.state;
    return {
      state: this.states || ["open", "acknowledged"],
      mask: [s.mask || "**"],
      event: s.event && s.event !== "*" ? [s.event] : [],
      min_level: s.level || null,
      filter: s.filter || null,
      limit: PAGE,
      cursor: this.cursor,
    };
  }

  async #page() {
    this.more.disabled = true;
    try {
      const page = await this.api.call("GET", "/alarms", null, { query: this.#query() });
      for (const alarm of page.alarms) {
        const shown = this.tbody.querySelector(`tr[data-id="${alarm.id}"]`); // added live meanwhile
        if (shown) {
          shown.replaceWith(this.#row(alarm));
          this.alarms[this.alarms.findIndex((a) => String(a.id) === String(alarm.id))] = alarm;
        } else {
          this.tbody.append(this.#row(alarm));
          this.alarms.push(alarm);
        }
      }
      this.cursor = page.next_cursor || null;
      this.more.disabled = !this.cursor;
      this.status.textContent = `${this.alarms.length} alarms${this.cursor ? " (more)" : ""}`;
      return null;
    } catch (error) {
      this.status.textContent = `error: ${error.message.split("\n")[0]}`;
      return error;
    }
  }

  #row(alarm) {
    const box = el("input", {
      type: "checkbox",
      "aria-label": `select alarm ${alarm.key}`,
      checked: this.selected.has(alarm.id),
      onchange: (e) => {
        if (e.target.checked) this.selected.add(alarm.id);
        else this.selected.delete(alarm.id);
        this.ackButton.disabled = this.clearButton.disabled = this.selected.size === 0;
      },
    });
    const acks = alarm.acknowledgements || [];
    const last = acks[acks.length - 1];
    return el(
      "tr",
      { "data-id": alarm.id, "data-level": alarm.level, "data-state": alarm.state },
      el("td", {}, box),
      el("td", {}, alarm.state),
      el("td", {}, el("span", { class: "level", "data-level": alarm.level }, alarm.level)),
      el("td", {}, displayPath(alarm.context)),
      el("td", {}, alarm.name),
      el(
        "td",
        {},
        alarm.event
          ? el("button", { type: "button", class: "link", onclick: () => this.onOpen(alarm.event) }, alarm.message || alarm.key)
          : alarm.message || alarm.key,
      ),
      el("td", {}, String(alarm.count)),
      el("td", {}, fullTime(alarm.first)),
      el("td", {}, fullTime(alarm.last)),
      el("td", {}, last ? `${last.user}: ${last.text}` : ""),
    );
  }

  #act(what) {
    const ids = [...this.selected];
    const run = async (text) => {
      const failures = [];
      for (const id of ids) {
        try {
          await this.api.call("POST", `/alarms/${id}/${what}`, text === null ? null : { text });
        } catch (error) {
          failures.push(`alarm ${id}: ${error.message.split("\n")[0]}`);
        }
      }
      await this.show(this.state);
      return failures;
    };
    if (what === "acknowledge") this.acknowledger.askFor(`${ids.length} alarm${ids.length > 1 ? "s" : ""}`, run);
    else run(null).then((failures) => failures.length && (this.status.textContent = failures.join("; ")));
  }
}
