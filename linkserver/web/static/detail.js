// The event detail: its message, its data table as a table (coded values as their labels), the
// operator instructions, the definition's description and help, every acknowledgement, and
// related events: the same context, and the same alarm (GET /events/{id} names the alarm an event
// raises or clears; GET /alarms/{id}/events lists its events, as the API lets the user see them).

import { $, clear, displayPath, el, fullTime, shortTime, summary } from "./util.js";

export class Detail {
  constructor(api, catalog, { onAcknowledge, onOpen }) {
    this.api = api;
    this.catalog = catalog;
    this.onAcknowledge = onAcknowledge;
    this.onOpen = onOpen;
    this.panel = $("#detail");
    this.body = $("#detail-body");
    this.current = null;
    $("#detail-close").addEventListener("click", () => this.close());
    // Escape closes it from anywhere but a dialog (which Escape closes itself).
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && !this.panel.hidden && !document.querySelector("dialog[open]")) this.close();
    });
  }

  close() {
    const wasOpen = !this.panel.hidden;
    this.panel.hidden = true;
    this.current = null;
    // Back to where the detail was opened from (a row of the list: arrows go on from there).
    if (wasOpen && this.returnTo && this.returnTo.isConnected) this.returnTo.focus({ preventScroll: true });
    this.returnTo = null;
  }

  async show(event) {
    const opening = this.panel.hidden;
    this.current = event.id;
    this.panel.hidden = false;
    this.#render(event, null, null, null);
    if (opening) this.returnTo = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    if (opening || this.panel.contains(document.activeElement)) {
      // Keyboard users land in the detail (Escape closes it and brings them back), also when a
      // related event replaced the button they pressed.
      $("#detail-title").focus({ preventScroll: true });
    }
    const [stored, definition] = await Promise.all([
      this.api.call("GET", `/events/${event.id}`).then((a) => a.event, () => null), // not persistent: as received
      this.catalog.definition(event.context, event.name),
    ]);
    if (this.current !== event.id) return;
    const others = (events) => events.filter((e) => e.id !== event.id).slice(0, 10);
    const [related, alarms] = await Promise.all([
      this.api
        .call("GET", "/history", null, { query: { mask: [event.context || "**"], limit: 11 } })
        .then((p) => others(p.events), () => []),
      Promise.all(
        ((stored && stored.alarms) || []).map((alarm) =>
          alarm.id === null
            ? { ...alarm, events: null }
            : this.api
                .call("GET", `/alarms/${alarm.id}/events`, null, { query: { limit: 11 } })
                .then((p) => ({ ...alarm, events: others(p.events), more: p.next_cursor !== null }), () => ({ ...alarm, events: null })),
        ),
      ),
    ]);
    if (this.current !== event.id) return;
    this.#render(stored || event, definition, related, alarms);
  }

  refresh(event) {
    if (this.current === event.id) this.show(event);
  }

  #render(event, definition, related, alarms) {
    const body = clear(this.body);
    $("#detail-title").textContent = `${event.name} in ${displayPath(event.context)}`;
    body.append(
      el(
        "dl",
        { class: "facts" },
        el("dt", {}, "Level"),
        el("dd", {}, el("span", { class: "level", "data-level": event.level }, event.level)),
        el("dt", {}, "Time"),
        el("dd", {}, el("time", { datetime: event.created }, fullTime(event.created))),
        el("dt", {}, "Id"),
        el("dd", {}, String(event.id)),
        el("dt", {}, "Author"),
        el("dd", {}, event.author || "—"),
        event.group ? [el("dt", {}, "Group"), el("dd", {}, event.group)] : null,
        event.expires ? [el("dt", {}, "Expires"), el("dd", {}, fullTime(event.expires))] : null,
      ),
    );
    const text = summary(event);
    if (text) body.append(el("p", { class: "message" }, text));
    body.append(el("h3", {}, "Data"), dataTable(event.data || [], definition, event.labels));
    const instructions = (definition && definition.instructions) || event.instructions;
    if (instructions) body.append(el("h3", {}, "Instructions"), el("p", { class: "instructions" }, instructions));
    if (definition) {
      body.append(el("h3", {}, "Definition"));
      if (definition.description) body.append(el("p", {}, definition.description));
      if (definition.help) body.append(el("p", { class: "help" }, definition.help));
    }
    const acks = event.acknowledgements || [];
    body.append(el("h3", {}, `Acknowledgements (${acks.length})`));
    if (acks.length) {
      body.append(
        el(
          "ul",
          { class: "acks" },
          acks.map((a) => el("li", {}, el("strong", {}, a.user), ` ${fullTime(a.time)}: `, a.text)),
        ),
      );
    } else if (definition && definition.requires_acknowledgement) {
      body.append(el("p", { class: "todo" }, "Not acknowledged yet; this event needs it."));
    }
    if (definition && definition.persistent) {
      body.append(el("button", { type: "button", class: "primary", onclick: () => this.onAcknowledge([event]) }, "Acknowledge…"));
    }
    if (related) {
      body.append(el("h3", {}, "Related: the same context"));
      if (!related.length) body.append(el("p", { class: "muted" }, "No other stored events there."));
      body.append(this.#relatedList(related, "context"));
    }
    for (const alarm of alarms || []) {
      const how = alarm.role === "clears" ? "it cleared" : "it is part of";
      body.append(el("h3", {}, `Related: the same alarm (${how})`));
      body.append(el("p", { class: "alarm-key" }, "Key ", el("code", {}, alarm.key), alarm.state ? ` — ${alarm.state}` : ""));
      if (alarm.events === null) {
        body.append(el("p", { class: "muted" }, "That alarm is no longer in the alarm list (cleared and purged, or come back as a new one)."));
        continue;
      }
      if (!alarm.events.length) body.append(el("p", { class: "muted" }, "No other stored events of it."));
      body.append(this.#relatedList(alarm.events, "alarm"));
      if (alarm.more) body.append(el("p", { class: "muted" }, "Only the newest ten are shown; the Alarms view has the alarm."));
    }
  }

  #relatedList(events, kind) {
    return el(
      "ul",
      { class: "related", "data-related": kind },
      events.map((r) =>
        el(
          "li",
          { "data-id": String(r.id) },
          el("button", { type: "button", class: "link", onclick: () => this.onOpen(r) }, `${shortTime(r.created)} ${r.name}`),
          ` ${r.level} ${kind === "alarm" ? displayPath(r.context) + " " : ""}${summary(r)}`,
        ),
      ),
    );
  }
}

// Columns in the format's order (then any others), one row per record. A coded value is shown
// as its label with the stored value after it ("the connection was lost (lost)"): `labels` is the
// event's, per record {field: label}.
export function dataTable(records, definition, labels) {
  const names = definition ? definition.format.fields.map((f) => f.name) : [];
  for (const record of records) for (const key of Object.keys(record)) if (!names.includes(key)) names.push(key);
  if (!records.length) return el("p", { class: "muted" }, "No data.");
  const described = new Map(definition ? definition.format.fields.map((f) => [f.name, f.description]) : []);
  return el(
    "table",
    { class: "data" },
    el("thead", {}, el("tr", {}, names.map((n) => el("th", { scope: "col", title: described.get(n) || null }, n)))),
    el(
      "tbody",
      {},
      records.map((r, i) =>
        el(
          "tr",
          {},
          names.map((n) => {
            const v = r[n];
            const label = labels && labels[i] ? labels[i][n] : undefined;
            const text = v === undefined ? "" : v === null ? "null" : typeof v === "object" ? JSON.stringify(v) : String(v);
            if (typeof label === "string") return el("td", { class: "labelled", title: `stored as ${text}` }, `${label} (${text})`);
            return el("td", {}, text);
          }),
        ),
      ),
    ),
  );
}
