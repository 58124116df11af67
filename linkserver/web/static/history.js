// History: the filters against stored events, paged with the API's cursors (older pages
// appended below), and export of everything the filters match as CSV or JSON lines.

import { historyQuery } from "./filters.js";
import { EventList } from "./vlist.js";
import { $, csvCell, displayPath, download } from "./util.js";

const PAGE = 200;
const EXPORT_PAGE = 5000;
const EXPORT_LIMIT = 200000;

export class HistoryView {
  constructor({ api, catalog, onOpen, onSelection }) {
    this.api = api;
    this.catalog = catalog;
    this.list = new EventList($("#history-list"), { label: "Stored events, newest first", onOpen, onSelection });
    this.cursor = null;
    this.state = null;
    this.count = null;
    this.more = $("#history-more");
    this.status = $("#history-status");
    this.more.addEventListener("click", () => this.page());
    $("#export-csv").addEventListener("click", () => this.export("csv"));
    $("#export-jsonl").addEventListener("click", () => this.export("jsonl"));
  }

  async show(state) {
    this.state = state;
    this.list.clear();
    this.cursor = null;
    this.count = null;
    return this.page(true);
  }

  async page(first = false) {
    const state = this.state;
    this.more.disabled = true;
    this.status.textContent = "Loading…";
    try {
      const query = { ...historyQuery(state), limit: PAGE, cursor: this.cursor, count: first || null };
      const page = await this.api.call("GET", "/history", null, { query });
      if (this.state !== state) return null;
      for (const event of page.events) {
        const definition = this.catalog.definitionNow(event.context, event.name);
        if (definition) event.requiresAck = definition.requires_acknowledgement;
      }
      this.list.append(page.events);
      if (first) this.count = page.count;
      this.cursor = page.next_cursor;
      this.more.disabled = !this.cursor;
      this.status.textContent = `${this.list.length.toLocaleString()} of ${this.count?.toLocaleString() ?? "?"} events`;
      return null;
    } catch (error) {
      this.status.textContent = `error: ${error.message.split("\n")[0]}`;
      return error;
    }
  }

  // Every matching event (newest first), page by page with the cursor.
  async export(kind) {
    const events = [];
    let cursor = null;
    this.status.textContent = "Exporting…";
    try {
      do {
        const query = { ...historyQuery(this.state), limit: EXPORT_PAGE, cursor };
        const page = await this.api.call("GET", "/history", null, { query });
        events.push(...page.events);
        cursor = page.next_cursor;
      } while (cursor && events.length < EXPORT_LIMIT);
    } catch (error) {
      this.status.textContent = `export failed: ${error.message}`;
      return;
    }
    const stamp = new Date().toISOString().replaceAll(":", "-").slice(0, 19);
    if (kind === "jsonl") {
      download(`events-${stamp}.jsonl`, events.map((e) => JSON.stringify(e)).join("\n") + "\n", "application/x-ndjson");
    } else {
      const head = ["id", "created", "level", "context", "name", "author", "group", "acknowledged", "data"];
      const rows = events.map((e) =>
        [e.id, e.created, e.level, displayPath(e.context), e.name, e.author, e.group, (e.acknowledgements || []).length > 0, e.data]
          .map(csvCell)
          .join(","),
      );
      download(`events-${stamp}.csv`, [head.join(","), ...rows].join("\r\n") + "\r\n", "text/csv");
    }
    const cut = cursor ? ` (the first ${EXPORT_LIMIT.toLocaleString()})` : "";
    this.status.textContent = `exported ${events.length.toLocaleString()} events${cut}`;
  }

  update(event) {
    this.list.update(event);
  }
}
