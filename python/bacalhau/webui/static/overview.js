// #/overview: jobs per state over the last hour, throughput (jobs finished per 5 minutes) and
// the network's nodes and capacity, drawn as SVG charts from the jobs and nodes listings.

import { JOBS, NODES, get } from "./api.js";
import { h, replace } from "./dom.js";
import { bytes, cpu, JOB_STATES, TERMINAL, jobState, toMillis } from "./format.js";
import { horizontalBars, legend, stackedBars } from "./charts.js";
import { capacityBar } from "./nodes.js";

const HOUR = 3600 * 1000;
const BUCKET = 5 * 60 * 1000;
const MAX_JOBS = 2000;

function buckets(now) {
  const start = Math.floor((now - HOUR) / BUCKET) * BUCKET + BUCKET;
  return Array.from({ length: HOUR / BUCKET }, (_, i) => {
    const t = new Date(start + i * BUCKET);
    return { from: start + i * BUCKET, label: `${String(t.getHours()).padStart(2, "0")}:${String(t.getMinutes()).padStart(2, "0")}`, values: {} };
  });
}

function place(list, ms, key) {
  for (const b of list) {
    if (ms >= b.from && ms < b.from + BUCKET) { b.values[key] = (b.values[key] || 0) + 1; return true; }
  }
  return false;
}

export function render(root, _params, ctx) {
  const stats = h("div", { class: "panel stat", id: "overview-stats" });
  const created = h("div", { class: "panel", id: "chart-created" });
  const finished = h("div", { class: "panel", id: "chart-throughput" });
  const states = h("div", { class: "panel", id: "chart-states" });
  const capacity = h("div", { class: "panel", id: "overview-capacity" });
  replace(root, h("h1", {}, "Overview"), stats,
    h("div", { class: "grid2" }, created, finished, states, capacity));

  async function refresh() {
    const [jobsDoc, nodesDoc] = await Promise.all([
      get(JOBS, { limit: MAX_JOBS, order_by: "modified_at", reverse: true }),
      get(NODES),
    ]);
    if (!ctx.active()) return;
    const jobs = jobsDoc?.Items || [];
    const nodes = nodesDoc?.Nodes || [];
    const now = Date.now();

    const createdBuckets = buckets(now);
    const doneBuckets = buckets(now);
    let createdHour = 0;
    let doneHour = 0;
    const counts = Object.fromEntries(JOB_STATES.map((st) => [st, 0]));
    for (const j of jobs) {
      const st = jobState(j);
      counts[st] = (counts[st] || 0) + 1;
      if (place(createdBuckets, toMillis(j.CreateTime), st)) createdHour++;
      if (TERMINAL.has(st) && place(doneBuckets, toMillis(j.ModifyTime), st)) doneHour++;
    }
    const running = counts.Running || 0;
    const computes = nodes.filter((n) => n.Info?.NodeType === "Compute");
    const connected = computes.filter((n) => (n.ConnectionState?.Status || n.Connection) === "CONNECTED");
    replace(stats,
      stat(createdHour, "jobs submitted (1 h)"),
      stat((doneHour / 60).toFixed(2), "jobs finished / min (1 h)"),
      stat(running, "running now"),
      stat(`${connected.length} / ${computes.length}`, "compute nodes connected"));

    const stateSeries = JOB_STATES;
    replace(created, h("h2", {}, "Jobs submitted in the last hour, by state"),
      stackedBars(createdBuckets, stateSeries, { title: "jobs submitted per 5 minutes" }), legend(stateSeries));
    replace(finished, h("h2", {}, "Throughput: jobs finished per 5 minutes"),
      stackedBars(doneBuckets, ["Completed", "Failed", "Stopped"], { title: "jobs finished per 5 minutes" }),
      legend(["Completed", "Failed", "Stopped"]));
    replace(states, h("h2", {}, `Jobs by state (${jobs.length}${jobs.length >= MAX_JOBS ? "+" : ""} most recent)`),
      horizontalBars(JOB_STATES.map((st) => ({ label: st, value: counts[st] || 0, cls: `fill-${st}` })),
        { title: "jobs by state" }));

    const total = { CPU: [0, 0], Memory: [0, 0], Disk: [0, 0], GPU: [0, 0] };
    for (const n of connected) {
      const c = n.Info.ComputeNodeInfo || {};
      for (const k of Object.keys(total)) {
        total[k][0] += Number(c.AvailableCapacity?.[k] || 0);
        total[k][1] += Number(c.MaxCapacity?.[k] || 0);
      }
    }
    replace(capacity, h("h2", {}, "Capacity of connected compute nodes (available / max)"),
      h("div", { class: "toolbar" },
        h("label", {}, "CPU", capacityBar(total.CPU[0], total.CPU[1], cpu)),
        h("label", {}, "Memory", capacityBar(total.Memory[0], total.Memory[1], bytes)),
        h("label", {}, "Disk", capacityBar(total.Disk[0], total.Disk[1], bytes)),
        h("label", {}, "GPU", capacityBar(total.GPU[0], total.GPU[1], (x) => String(x || 0)))));
  }
  ctx.every(5000, refresh);
}

function stat(value, label) {
  return h("div", {}, h("b", {}, String(value)), h("span", { class: "muted small" }, label));
}
