// Events per minute by level over the last hour, as stacked bars (SVG), from stored events
// of the last hour (up to 10,000) and then every live event the page receives.

import { LEVELS, clear } from "./util.js";

const MINUTES = 60;
const SVG = "http://www.w3.org/2000/svg";
const BACKFILL = 10000;

const svg = (tag, attrs = {}) => {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
};

export class Chart {
  constructor(host) {
    this.host = host;
    this.counts = new Map(); // minute number -> [count per level]
    this.seen = new Set(); // ids counted from history, so live copies are not counted twice
    this.partial = false;
    this.scheduled = false;
    setInterval(() => this.draw(), 15000); // the hour moves on
  }

  async backfill(api) {
    const since = new Date(Date.now() - MINUTES * 60000).toISOString();
    try {
      const page = await api.call("GET", "/history", null, { query: { since, limit: BACKFILL } });
      for (const event of page.events) {
        this.seen.add(event.id);
        this.#count(event);
      }
      this.partial = page.next_cursor !== null;
    } catch {
      this.partial = true;
    }
    this.draw();
  }

  add(events) {
    for (const event of events) {
      if (this.seen.size && this.seen.delete(event.id)) continue;
      this.#count(event);
    }
    this.draw();
  }

  #count(event) {
    const minute = Math.floor(Date.parse(event.created) / 60000);
    let row = this.counts.get(minute);
    if (!row) this.counts.set(minute, (row = [0, 0, 0, 0, 0, 0]));
    row[LEVELS.indexOf(event.level)] += 1;
  }

  draw() {
    if (this.scheduled) return;
    this.scheduled = true;
    setTimeout(() => this.#render(), 1000); // a chart of minutes needs no more than one draw a second
  }

  #render() {
    this.scheduled = false;
    const now = Math.floor(Date.now() / 60000);
    for (const minute of this.counts.keys()) if (minute <= now - MINUTES) this.counts.delete(minute);
    const width = 300, height = 120, bar = width / MINUTES;
    let max = 1, total = 0;
    const sums = [0, 0, 0, 0, 0, 0];
    for (const row of this.counts.values()) {
      const sum = row.reduce((a, b) => a + b, 0);
      max = Math.max(max, sum);
      total += sum;
      row.forEach((c, i) => (sums[i] += c));
    }
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height + 14}`, role: "img", class: "bars" });
    const title = svg("title");
    title.textContent = `${total} events in the last hour: ` + LEVELS.map((l, i) => `${sums[i]} ${l}`).filter((_, i) => sums[i]).join(", ");
    chart.append(title);
    for (let m = 0; m < MINUTES; m++) {
      const row = this.counts.get(now - MINUTES + 1 + m);
      if (!row) continue;
      let y = height;
      row.forEach((count, level) => {
        if (!count) return;
        const h = (count / max) * height;
        y -= h;
        chart.append(svg("rect", { x: m * bar, y, width: Math.max(1, bar - 1), height: h, class: `l${level}` }));
      });
    }
    const axis = svg("text", { x: 0, y: height + 12, class: "axis" });
    axis.textContent = `-60 min · peak ${max}/min`;
    const end = svg("text", { x: width, y: height + 12, class: "axis", "text-anchor": "end" });
    end.textContent = "now";
    chart.append(axis, end);
    const legend = document.createElement("p");
    legend.className = "legend";
    LEVELS.forEach((level, i) => {
      if (!sums[i]) return;
      const item = document.createElement("span");
      item.className = `key l${i}`;
      item.textContent = `${level} ${sums[i]}`;
      legend.append(item);
    });
    if (this.partial) legend.append(" (history: the newest 10,000 only)");
    clear(this.host).append(chart, legend);
  }
}
