// The network API as the page uses it: HTTP calls with the session token in the
// Authorization header, and one WebSocket whose token rides in Sec-WebSocket-Protocol
// ("linkserver.v1", "bearer.TOKEN"): never in a URL, where logs and history keep it.

const PREFIX = "/api/v1";

// Event ids are 64-bit integers, beyond what a JavaScript number holds exactly (2^53): they
// are read as their exact text (JSON.parse source text access) and sent back as raw numbers.
// "event": an alarm's last event id (GET /alarms), "cleared_event" likewise.
const ID_KEYS = new Set(["id", "last_delivered_id", "last_dropped_id", "event", "cleared_event"]);
export const parse = (text) =>
  JSON.parse(text, (key, value, context) => (ID_KEYS.has(key) && typeof value === "number" ? context.source : value));
const rawId = (id) => JSON.rawJSON(String(id));
const TOKEN_KEY = "linkserver.session";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail.message || `HTTP ${status}`);
    this.status = status;
    this.type = detail.type || "Error";
    this.column = detail.column ?? null;
    this.fields = detail.fields || null;
  }
}

export class Api {
  constructor() {
    const saved = sessionStorage.getItem(TOKEN_KEY);
    this.session = saved ? JSON.parse(saved) : null; // {token, user, expires}
    this.onUnauthorized = () => {};
  }

  get token() {
    return this.session ? this.session.token : null;
  }

  async login(user, password) {
    const session = await this.call("POST", "/login", { user, password }, { anonymous: true });
    this.session = session;
    sessionStorage.setItem(TOKEN_KEY, JSON.stringify(session));
    return session;
  }

  async logout() {
    try {
      if (this.session) await this.call("POST", "/logout", {});
    } finally {
      this.forget();
    }
  }

  forget() {
    this.session = null;
    sessionStorage.removeItem(TOKEN_KEY);
  }

  // call("GET", "/history", null, {query: {mask: ["a.**"], limit: 10}})
  async call(method, path, body = null, { query = null, anonymous = false, signal } = {}) {
    let url = PREFIX + path;
    if (query) {
      const params = new URLSearchParams();
      for (const [key, value] of Object.entries(query)) {
        if (value === null || value === undefined || value === "") continue;
        for (const item of Array.isArray(value) ? value : [value]) params.append(key, String(item));
      }
      const text = params.toString();
      if (text) url += "?" + text;
    }
    const headers = { Accept: "application/json" };
    if (body !== null) headers["Content-Type"] = "application/json";
    if (!anonymous && this.token) headers.Authorization = `Bearer ${this.token}`;
    const response = await fetch(url, {
      method,
      headers,
      body: body === null ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
      signal,
    });
    const text = await response.text();
    const answer = text ? parse(text) : {};
    if (!response.ok) {
      const error = new ApiError(response.status, answer.error || {});
      if (response.status === 401 && !anonymous) this.onUnauthorized(error);
      throw error;
    }
    return answer;
  }
}

// One WebSocket for the page: subscriptions by ref, pushes to each subscription's handler.
// It reconnects (resuming each subscription from the last event it got) unless the server
// ended the session (4401) or the page closed it.
export class Live {
  constructor(api, { onState = () => {}, onEnded = () => {} } = {}) {
    this.api = api;
    this.onState = onState;
    this.onEnded = onEnded;
    this.socket = null;
    this.nextRef = 1;
    this.waiting = new Map(); // ref -> {resolve, reject}
    this.subscriptions = new Map(); // local key -> {spec, sid, handler, lastId}
    this.bySid = new Map();
    this.closedByUs = false;
    this.retry = 500;
  }

  open() {
    this.closedByUs = false;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/api/v1/ws`, ["linkserver.v1", `bearer.${this.api.token}`]);
    this.socket = socket;
    this.onState("connecting");
    socket.onopen = () => {
      this.retry = 500;
      this.onState("live");
      for (const entry of this.subscriptions.values()) this.#subscribe(entry);
    };
    socket.onmessage = (message) => this.#receive(parse(message.data));
    socket.onclose = (close) => {
      if (this.socket !== socket) return;
      this.socket = null;
      for (const { reject } of this.waiting.values()) reject(new Error("the connection closed"));
      this.waiting.clear();
      this.bySid.clear();
      if (this.closedByUs) return this.onState("closed");
      if (close.code === 4401 || close.code === 1008) {
        this.onState("ended");
        return this.onEnded(close.reason || "the session ended");
      }
      this.onState("reconnecting");
      setTimeout(() => !this.closedByUs && !this.socket && this.open(), this.retry);
      this.retry = Math.min(this.retry * 2, 10000);
    };
  }

  close() {
    this.closedByUs = true;
    if (this.socket) this.socket.close(1000, "signed out");
    this.socket = null;
    this.onState("closed");
  }

  #send(message) {
    const ref = this.nextRef++;
    return new Promise((resolve, reject) => {
      if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return reject(new Error("not connected"));
      this.waiting.set(ref, { resolve, reject });
      this.socket.send(JSON.stringify({ ...message, ref }));
    });
  }

  // subscribe(key, {mask, event, filter, min_level}, handler, resumeFrom): handler gets
  // ("events", [events]) or ("gap", gap); a new spec under the same key replaces the old one.
  // The new entry takes the key before anything is awaited: two subscribe() calls for one
  // key in quick succession leave the later one in force, whichever answer comes first.
  async subscribe(key, spec, handler, resumeFrom = null) {
    const old = this.subscriptions.get(key);
    const entry = { key, spec, handler, sid: null, lastId: resumeFrom };
    this.subscriptions.set(key, entry);
    if (old) this.#drop(old);
    if (this.socket && this.socket.readyState === WebSocket.OPEN) return this.#subscribe(entry);
    return null;
  }

  async #subscribe(entry) {
    const message = { type: "subscribe", batch: true, ...entry.spec };
    if (entry.lastId) message.resume_from = rawId(entry.lastId);
    try {
      const answer = await this.#send(message);
      if (this.subscriptions.get(entry.key) !== entry) {
        this.#send({ type: "unsubscribe", subscription: answer.subscription }).catch(() => {});
        return null;
      }
      entry.sid = answer.subscription;
      this.bySid.set(entry.sid, entry);
      return entry.sid;
    } catch (error) {
      if (this.subscriptions.get(entry.key) === entry) this.subscriptions.delete(entry.key);
      throw error;
    }
  }

  async unsubscribe(key) {
    const entry = this.subscriptions.get(key);
    if (!entry) return;
    this.subscriptions.delete(key);
    await this.#drop(entry);
  }

  // Its pushes stop here at once; one still being subscribed is unsubscribed when its
  // answer comes (#subscribe sees that it no longer holds its key).
  async #drop(entry) {
    if (!entry.sid) return;
    this.bySid.delete(entry.sid);
    await this.#send({ type: "unsubscribe", subscription: entry.sid }).catch(() => {});
  }

  #receive(message) {
    switch (message.type) {
      case "event":
      case "events": {
        const entry = this.bySid.get(message.subscription);
        if (!entry) return;
        const events = message.type === "event" ? [message.event] : message.events;
        entry.lastId = events[events.length - 1].id;
        entry.handler("events", events);
        return;
      }
      case "gap": {
        const entry = this.bySid.get(message.subscription);
        if (entry) entry.handler("gap", message);
        return;
      }
      case "error": {
        const waiting = this.waiting.get(message.ref);
        if (!waiting) return;
        this.waiting.delete(message.ref);
        waiting.reject(new ApiError(400, message.error));
        return;
      }
      default: {
        const waiting = this.waiting.get(message.ref);
        if (!waiting) return;
        this.waiting.delete(message.ref);
        waiting.resolve(message);
      }
    }
  }
}
