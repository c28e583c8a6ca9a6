// #/nodes and #/nodes/<id>: the nodes the orchestrator knows, with membership, connection,
// labels, engines, capacity bars (available / max) and running/queued executions; Approve and
// Reject for nodes waiting on manual approval.

import { NODES, api, get } from "./api.js";
import { badge, chips, facts, h, replace, routeLink, table } from "./dom.js";
import { ago, bytes, cpu, shortId, time } from "./format.js";

const DIMENSIONS = [
  ["CPU", "CPU", cpu],
  ["Memory", "Memory", bytes],
  ["Disk", "Disk", bytes],
  ["GPU", "GPU", (n) => String(n || 0)],
];

function connection(node) {
  return node.ConnectionState?.Status || node.Connection || "";
}

/** A bar filled to the used share, labelled "available / max". */
export function capacityBar(available, max, fmt, offline = false) {
  const a = Number(available || 0);
  const m = Number(max || 0);
  if (!m) return h("span", { class: "muted" }, "—");
  if (offline) { // a disconnected node's availability is unknown (the API zeroes it)
    return h("div", { class: "bar", title: `disconnected: ${fmt(m)} max` },
      h("span", { class: "label muted" }, `? / ${fmt(m)}`));
  }
  const used = Math.min(1, Math.max(0, (m - a) / m));
  const fill = h("div", { class: ["fill", used >= 0.95 ? "full" : used >= 0.7 ? "high" : ""] });
  fill.style.width = `${(used * 100).toFixed(1)}%`; // CSSOM, allowed by the page's CSP
  return h("div", { class: "bar", title: `${fmt(a)} available of ${fmt(m)} (${Math.round(used * 100)}% in use)` },
    fill, h("span", { class: "label" }, pair(fmt(a), fmt(m))));
}

/** "20 / 216 GB" rather than "20 GB / 216 GB" when both share a unit. */
function pair(a, m) {
  const unit = / [A-Z]+$/.exec(m)?.[0];
  return unit && a.endsWith(unit) ? `${a.slice(0, -unit.length)} / ${m}` : `${a} / ${m}`;
}

let manualApproval = null; // from /api/v1/agent/config, read once

async function manualApprovalOn() {
  if (manualApproval === null) {
    try {
      const doc = await get("/api/v1/agent/config");
      const config = doc?.config || doc?.Config || {};
      const nm = (config.Orchestrator || {}).NodeManager || {};
      manualApproval = nm.ManualApproval === true || String(nm.ManualApproval).toLowerCase() === "true";
    } catch {
      manualApproval = false;
    }
  }
  return manualApproval;
}

function actionButtons(node, ctx, refresh) {
  const id = node.Info?.NodeID;
  const membership = node.Membership;
  if (node.Info?.NodeType !== "Compute") return [];
  if (membership !== "PENDING" && !manualApproval) return [];
  const act = (action) => async () => {
    try {
      await api("PUT", `${NODES}/${encodeURIComponent(id)}`,
        { body: { Action: action, NodeID: id, Message: `${action}d from the web UI` } });
      ctx.banner(`Node ${shortId(id)}: ${action} done.`, "info");
    } catch (err) {
      ctx.banner(err, "alert");
    }
    await refresh().catch(ctx.banner);
  };
  return [
    membership !== "APPROVED" ? h("button", { type: "button", class: "ok", "data-action": "approve", on: { click: act("approve") } }, "Approve") : null,
    membership !== "REJECTED" ? h("button", { type: "button", class: "danger", "data-action": "reject", on: { click: act("reject") } }, "Reject") : null,
  ];
}

const SYSTEM_LABELS = new Set(["os_type", "os_arch", "name"]);

export function render(root, params, ctx) {
  if (params.length && params[0]) renderNode(root, params[0], ctx);
  else renderList(root, ctx);
}

function renderList(root, ctx) {
  const holder = h("div", { id: "nodes-table" });
  const summary = h("span", { class: "muted" });
  replace(root, h("h1", {}, "Nodes", summary), holder);

  async function refresh() {
    const [doc] = await Promise.all([get(NODES, { order_by: "id" }), manualApprovalOn()]);
    if (!ctx.active()) return;
    const list = doc?.Nodes || [];
    const withActions = manualApproval || list.some((n) => n.Membership === "PENDING");
    const rows = list.map((n) => {
      const info = n.Info || {};
      const c = info.ComputeNodeInfo || {};
      const compute = info.NodeType === "Compute";
      return h("tr", { "data-node-id": info.NodeID },
        h("td", { class: "mono nowrap" }, routeLink(`/nodes/${encodeURIComponent(info.NodeID)}`, shortId(info.NodeID), { title: info.NodeID })),
        h("td", {}, info.NodeType || ""),
        h("td", { "data-col": "membership" }, badge(n.Membership)),
        h("td", { "data-col": "connection" }, badge(connection(n))),
        h("td", {}, chips(info.Labels, (k) => SYSTEM_LABELS.has(k))),
        h("td", {}, compute ? (c.ExecutionEngines || []).map((e) => h("span", { class: "chip" }, e)) : "—"),
        DIMENSIONS.map(([key, , fmt]) => h("td", {}, compute
          ? capacityBar(c.AvailableCapacity?.[key], c.MaxCapacity?.[key], fmt, connection(n) !== "CONNECTED")
          : h("span", { class: "muted" }, "—"))),
        h("td", { class: "nowrap" }, compute ? `${c.RunningExecutions || 0} / ${c.EnqueuedExecutions || 0}` : "—"),
        withActions ? h("td", { class: "nowrap" }, actionButtons(n, ctx, refresh)) : null);
    });
    const connected = list.filter((n) => connection(n) === "CONNECTED").length;
    summary.textContent = `${list.length} known · ${connected} connected`;
    summary.className = "muted small";
    replace(holder, table(["Node", "Type", "Membership", "Connection", "Labels", "Engines",
      "CPU", "Memory", "Disk", "GPU", "Run / queue", ...(withActions ? [""] : [])], rows, "No nodes known yet."));
  }
  ctx.every(2000, refresh);
}

function renderNode(root, nodeId, ctx) {
  const title = h("h1", {}, "Node ", h("span", { class: "mono" }, shortId(nodeId)));
  const body = h("div", {});
  replace(root, title, body);

  async function refresh() {
    const [doc] = await Promise.all([get(`${NODES}/${encodeURIComponent(nodeId)}`), manualApprovalOn()]);
    if (!ctx.active()) return;
    const n = doc?.Node || {};
    const info = n.Info || {};
    const c = info.ComputeNodeInfo || {};
    const cs = n.ConnectionState || {};
    const v = info.BacalhauVersion || {};
    replace(title, "Node ", h("span", { class: "mono" }, info.NodeID || nodeId), badge(n.Membership),
      badge(connection(n)), h("span", { class: "confirm" }, actionButtons(n, ctx, refresh)));
    const resourceRow = (label, r) => h("tr", {}, h("td", {}, label),
      DIMENSIONS.map(([key, , fmt]) => h("td", {}, fmt(r?.[key]))));
    const compute = info.NodeType === "Compute";
    replace(body,
      h("div", { class: "grid2" },
        h("div", { class: "panel" }, h("h2", {}, "Node"), facts([
          ["ID", h("span", { class: "mono" }, info.NodeID)],
          ["Type", info.NodeType],
          ["Membership", badge(n.Membership)],
          ["Connection", badge(connection(n))],
          ["Last heartbeat", cs.LastHeartbeat ? `${time(cs.LastHeartbeat)} (${ago(cs.LastHeartbeat)})` : ""],
          ["Connected since", cs.ConnectedSince ? time(cs.ConnectedSince) : ""],
          ["Disconnected since", cs.DisconnectedSince && connection(n) === "DISCONNECTED" ? time(cs.DisconnectedSince) : ""],
          ["Last error", cs.LastError || ""],
          ["Version", v.GitVersion ? `${v.GitVersion} (${v.GOOS || "?"}/${v.GOARCH || "?"})` : ""],
          ["Address", c.address || ""],
          ["Protocols", (info.SupportedProtocols || []).join(", ")],
        ])),
        h("div", { class: "panel" }, h("h2", {}, "Labels"), h("div", {}, chips(info.Labels)),
          compute ? h("div", {}, h("h2", {}, "Providers"), facts([
            ["Engines", (c.ExecutionEngines || []).map((e) => h("span", { class: "chip" }, e))],
            ["Publishers", (c.Publishers || []).map((e) => h("span", { class: "chip" }, e))],
            ["Storage", (c.StorageSources || []).map((e) => h("span", { class: "chip" }, e))],
            ["Executions", `${c.RunningExecutions || 0} running, ${c.EnqueuedExecutions || 0} queued`],
          ])) : null)),
      compute ? h("div", { class: "panel" }, h("h2", {}, "Capacity"),
        h("div", { class: "toolbar" }, DIMENSIONS.map(([key, label, fmt]) => h("label", {}, label,
          capacityBar(c.AvailableCapacity?.[key], c.MaxCapacity?.[key], fmt, connection(n) !== "CONNECTED")))),
        table(["", "CPU", "Memory", "Disk", "GPU"], [
          resourceRow("Max", c.MaxCapacity), resourceRow("Available", c.AvailableCapacity),
          resourceRow("Queued", c.QueueCapacity), resourceRow("Largest job", c.MaxJobRequirements)]),
        (c.MaxCapacity?.GPUs || []).length ? table(["GPU", "Name", "Vendor", "Memory"],
          c.MaxCapacity.GPUs.map((g) => h("tr", {}, h("td", {}, String(g.Index)), h("td", {}, g.Name),
            h("td", {}, g.Vendor), h("td", {}, `${g.Memory} MiB`)))) : null) : null,
      h("div", { class: "panel" }, h("details", {}, h("summary", {}, "Inspect (JSON)"),
        h("pre", { class: "json" }, JSON.stringify(n, null, 2)))));
  }
  ctx.every(2000, refresh);
}
