// The console: sign in, the views (live, history, alarms, tree), the filter bar shared by
// live and history, the event detail, acknowledgements and pop-ups.

import { Acknowledger, Popups } from "./ack.js";
import { AlarmsView } from "./alarms.js";
import { Api, Live } from "./api.js";
import { Catalog } from "./catalog.js";
import { Chart } from "./chart.js";
import { Detail } from "./detail.js";
import { FilterBar, isDefault, readHash, writeHash } from "./filters.js";
import { HistoryView } from "./history.js";
import { LiveView } from "./live.js";
import { TreeView } from "./tree.js";
import { $ } from "./util.js";

const VIEWS = ["live", "history", "alarms", "tree"];
const THEME_KEY = "linkserver.theme";

class Console {
  constructor() {
    this.api = new Api();
    this.api.onUnauthorized = () => this.signedOut("Your session ended; sign in again.");
    this.catalog = new Catalog(this.api);
    this.live = new Live(this.api, {
      onState: (state) => ($("#connection").textContent = state),
      onEnded: (reason) => this.signedOut(`Signed out: ${reason}.`),
    });
    const open = (event) => this.detail.show(event);
    this.acknowledger = new Acknowledger(this.api, { onAcknowledged: (event) => this.acknowledged(event) });
    this.detail = new Detail(this.api, this.catalog, { onAcknowledge: (events) => this.acknowledger.ask(events), onOpen: open });
    this.popups = new Popups(this.api, this.catalog, this.acknowledger, {
      onCount: (count) => ($("#open-alerts-count").textContent = String(count)),
      onOpen: open,
    });
    this.chart = new Chart($("#chart"));
    this.liveView = new LiveView({
      api: this.api,
      live: this.live,
      catalog: this.catalog,
      onOpen: open,
      onSelection: (ids) => ($("#live-ack").disabled = ids.size === 0),
      onEvents: (events) => {
        this.popups.consider(events);
        if (this.chartFromLive) this.chart.add(events);
      },
    });
    this.historyView = new HistoryView({
      api: this.api,
      catalog: this.catalog,
      onOpen: open,
      onSelection: (ids) => ($("#history-ack").disabled = ids.size === 0),
    });
    this.alarmsView = new AlarmsView(this.api, this.acknowledger, { onOpen: open, live: this.live });
    this.treeView = new TreeView(this.api, this.catalog);
    this.filters = new FilterBar(this.api, this.catalog, { onApply: (state) => this.route(this.view, state, true) });
    this.view = null;
    this.state = null;
    this.chartFromLive = true;

    $("#signin-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.signIn();
    });
    $("#signout").addEventListener("click", () => this.signOut());
    $("#live-ack").addEventListener("click", () => this.acknowledger.ask(this.liveView.list.selectedEvents()));
    $("#history-ack").addEventListener("click", () => this.acknowledger.ask(this.historyView.list.selectedEvents()));
    $("#theme").addEventListener("click", () => this.setTheme(document.documentElement.dataset.theme === "dark" ? "light" : "dark"));
    window.addEventListener("hashchange", () => this.fromHash());
    this.setTheme(localStorage.getItem(THEME_KEY) || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"));
  }

  setTheme(theme) {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem(THEME_KEY, theme);
    const button = $("#theme");
    button.textContent = theme === "dark" ? "Light" : "Dark";
    button.setAttribute("aria-pressed", String(theme === "dark"));
  }

  async start() {
    if (this.api.session) {
      try {
        await this.enter();
        return;
      } catch {
        this.api.forget();
      }
    }
    this.showSignIn("");
  }

  showSignIn(message) {
    $("#console").hidden = true;
    $("#signin").hidden = false;
    $("#signin-error").textContent = message;
    $("#signin-password").value = "";
    $("#signin-user").focus();
  }

  async signIn() {
    const user = $("#signin-user").value.trim();
    const password = $("#signin-password").value;
    $("#signin-error").textContent = "";
    try {
      await this.api.login(user, password);
    } catch (error) {
      $("#signin-error").textContent = error.message;
      $("#signin-password").select();
      return;
    }
    await this.enter();
  }

  async enter() {
    this.me = await this.api.call("GET", "/me");
    $("#whoami").textContent = this.me.user;
    $("#signin").hidden = true;
    $("#console").hidden = false;
    this.live.open();
    this.popups.start();
    await this.catalog.loadTree().catch(() => null);
    this.filters.fillCompletion();
    this.chart.backfill(this.api);
    await this.fromHash();
    $("#main").focus();
  }

  // Sign out: the session ends on the server, which closes its WebSockets too.
  async signOut() {
    this.live.close();
    await this.api.logout().catch(() => null);
    this.signedOut("Signed out.");
  }

  signedOut(message) {
    this.live.close();
    this.api.forget();
    this.popups.stop();
    this.liveView.stop();
    this.liveView.list.clear();
    this.historyView.list.clear();
    this.detail.close();
    this.view = this.state = this.liveKey = this.historyKey = null;
    this.showSignIn(message);
  }

  async fromHash() {
    if (!this.api.session) return;
    const { view, state } = readHash();
    this.filters.state = state;
    await this.route(VIEWS.includes(view) ? view : "live", state, false);
  }

  async route(view, state, push) {
    writeHash(view, state, { push });
    for (const name of VIEWS) $(`#view-${name}`).hidden = name !== view;
    for (const link of document.querySelectorAll("nav a")) {
      if (link.dataset.view === view) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    $("#filters").hidden = view === "tree";
    $("#filters").classList.toggle("live", view !== "history"); // no time range there
    $("#filters").classList.toggle("alarms", view === "alarms"); // alarms have states instead
    const key = JSON.stringify(state);
    if (this.view === "alarms" && view !== "alarms") this.alarmsView.hide();
    this.view = view;
    this.state = state;
    let error = null;
    if (view === "live" && key !== this.liveKey) {
      this.liveKey = key; // the live log goes on in the background, kept when coming back
      this.chartFromLive = isDefault(state);
      if (!this.chartFromLive) this.#chartSubscription();
      else this.live.unsubscribe("chart");
      error = await this.liveView.show(state);
    } else if (view === "history" && (key !== this.historyKey || push)) {
      this.historyKey = key;
      error = await this.historyView.show(state);
    } else if (view === "tree") {
      await this.treeView.show();
    } else if (view === "alarms") {
      error = await this.alarmsView.show(state);
    }
    if (error && error.type === "FilterError") this.filters.showError(error, state.filter);
  }

  // The chart counts everything the user sees, also when the live log is filtered.
  #chartSubscription() {
    this.live.subscribe("chart", { mask: "**", event: "*" }, (kind, events) => kind === "events" && this.chart.add(events)).catch(() => null);
  }

  acknowledged(event) {
    this.liveView.update(event);
    this.historyView.update(event);
    this.popups.acknowledged(event);
    this.detail.refresh(event);
    this.popups.poll();
  }
}

window.linkserverConsole = { rendered: null };
const app = new Console();
window.linkserverConsole.app = app;
app.start();
