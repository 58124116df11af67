// Small helpers shared by every view: DOM building, levels, times, text.

export const LEVELS = ["NONE", "NOTICE", "INFO", "WARNING", "ERROR", "FATAL"];
export const levelRank = (name) => LEVELS.indexOf(String(name).toUpperCase());

// el("button", {class: "x", onclick: f}, "text", child...): attributes starting with "on" are
// listeners, others attributes; children are nodes or text (never parsed as HTML).
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

const pad = (n, width = 2) => String(n).padStart(width, "0");

// Times are shown in the browser's local zone, with milliseconds in the log.
export function shortTime(iso) {
  const d = new Date(iso);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function fullTime(iso) {
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${shortTime(iso)}`;
}

export const displayPath = (path) => (path === "" ? "root" : path);

function valueText(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

// What an operator reads first: the event's rendered message (when the server gives one), the
// data's "message" field, else k=v pairs.
export function summary(event) {
  if (event.message) return event.message; // the definition's message, rendered by the server
  const records = event.data || [];
  if (records.length === 0) return "";
  const first = records[0];
  if (typeof first.message === "string" && first.message) {
    return records.length > 1 ? `${first.message} (+${records.length - 1})` : first.message;
  }
  const text = records
    .slice(0, 3)
    .map((r) =>
      Object.entries(r)
        .filter(([, v]) => v !== "") // an empty default says nothing
        .map(([k, v]) => `${k}=${valueText(v)}`)
        .join(" "),
    )
    .join("; ");
  return records.length > 3 ? `${text}; +${records.length - 3} more` : text;
}

export function ackText(event) {
  const acks = event.acknowledgements || [];
  if (acks.length === 0) return "";
  const last = acks[acks.length - 1];
  return acks.length > 1 ? `ack ${last.user} (+${acks.length - 1})` : `ack ${last.user}`;
}

// Does a context path match a mask ("*" one name, "**" any number of names)?
export function maskMatches(mask, path) {
  const want = mask === "" ? [] : mask.split(".");
  const have = path === "" ? [] : path.split(".");
  const match = (i, j) => {
    if (i === want.length) return j === have.length;
    if (want[i] === "**") {
      for (let k = j; k <= have.length; k++) if (match(i + 1, k)) return true;
      return false;
    }
    if (j === have.length) return false;
    return (want[i] === "*" || want[i] === have[j]) && match(i + 1, j + 1);
  };
  return match(0, 0);
}

export function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = el("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function csvCell(value) {
  const text = value === null || value === undefined ? "" : typeof value === "object" ? JSON.stringify(value) : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
