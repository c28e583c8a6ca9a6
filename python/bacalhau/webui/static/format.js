// Formatting of the API's values: nanosecond and RFC3339 times, sizes, ids, state names.

export const JOB_STATES = ["Pending", "Queued", "Running", "Completed", "Failed", "Stopped"];
export const TERMINAL = new Set(["Completed", "Failed", "Stopped"]);
export const JOB_TYPES = ["batch", "ops", "daemon", "service"];
// Execution ComputeState / DesiredState are integers on the wire (reference §2.3).
export const COMPUTE_STATES = ["Undefined", "New", "AskForBid", "AskForBidAccepted", "AskForBidRejected",
  "BidAccepted", "Running", "Publishing", "BidRejected", "Completed", "Failed", "Cancelled"];
export const DESIRED_STATES = ["Pending", "Running", "Stopped"];
const DISCARDED = new Set([4, 8, 10, 11]);

export function computeState(state) {
  const n = Number(state?.StateType ?? 0);
  return COMPUTE_STATES[n] ?? String(n);
}
export function desiredState(state) {
  const n = Number(state?.StateType ?? 0);
  return DESIRED_STATES[n] ?? String(n);
}
export function isDiscarded(execution) {
  return DISCARDED.has(Number(execution?.ComputeState?.StateType ?? 0));
}
export function jobState(job) { return String(job?.State?.StateType || "Undefined"); }

/** Milliseconds since the epoch from int nanoseconds or an RFC3339 string; NaN if absent. */
export function toMillis(value) {
  if (value === null || value === undefined || value === "" || value === 0) return NaN;
  if (typeof value === "number") return value / 1e6;
  if (/^\d+$/.test(String(value))) return Number(value) / 1e6;
  const t = Date.parse(String(value));
  return t > 0 ? t : NaN;
}

function pad(n) { return String(n).padStart(2, "0"); }

export function time(value) {
  const ms = toMillis(value);
  if (!Number.isFinite(ms)) return "—";
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function ago(value, now = Date.now()) {
  const ms = toMillis(value);
  if (!Number.isFinite(ms)) return "—";
  return duration(Math.max(0, now - ms)) + " ago";
}

export function duration(ms) {
  if (!Number.isFinite(ms)) return "—";
  const s = ms / 1000;
  if (s < 1) return `${Math.round(ms)}ms`;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(Math.floor(s % 60))}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

export function bytes(n) {
  const v = Number(n || 0);
  if (!v) return "0";
  const units = ["B", "KB", "MB", "GB", "TB", "PB"];
  let i = 0;
  let x = v;
  while (x >= 1000 && i < units.length - 1) { x /= 1000; i++; }
  return `${x.toFixed(x < 10 && i ? 1 : 0)} ${units[i]}`;
}

export function cpu(n) {
  const v = Number(n || 0);
  return Number.isInteger(v) ? String(v) : v.toFixed(2).replace(/0+$/, "").replace(/\.$/, "");
}

/** `j-1a2b3c4d`, `e-…` like the CLI; libp2p peer ids keep `12D3KooW` + 8 characters. */
export function shortId(id) {
  const text = String(id || "");
  const m = /^([a-z]-)([0-9a-f]{8})[0-9a-f-]{28}$/.exec(text);
  if (m) return m[1] + m[2];
  if (text.startsWith("12D3KooW") && text.length > 16) return text.slice(0, 16);
  return text;
}
