// The alarm list. The server's alarm API (GET /api/v1/alarms) is being built; until this
// server has it (its /openapi.json lists it), the view says so instead of showing nothing.

import { $, clear, el } from "./util.js";

export class AlarmsView {
  constructor(api) {
    this.api = api;
    this.body = $("#alarms-body");
  }

  async show() {
    const document_ = await fetch("/openapi.json", { cache: "no-store" }).then((r) => r.json(), () => ({}));
    const has = Object.keys(document_.paths || {}).some((p) => p.startsWith("/api/v1/alarms"));
    const box = clear(this.body);
    if (!has) {
      box.append(
        el(
          "p",
          { class: "placeholder" },
          "This server has no alarm list yet: alarms (events folded by reduction key, open / acknowledged / cleared) " +
            "appear here once the server offers them. Meanwhile History with “alerts to acknowledge” lists what is open.",
        ),
      );
    }
  }
}
