// #/jobs/<id>: one job: state and the reason it is not running, its spec, executions (node,
// state, timings), results (links and CIDs), the history timeline, logs streamed over the logs
// WebSocket while it runs, and a Stop button.

import { JOBS, api, get, openLogs } from "./api.js";
import { badge, chips, facts, h, replace, routeLink, safeLink, table } from "./dom.js";
import {
  TERMINAL, ago, computeState, desiredState, duration, isDiscarded, jobState, shortId, time, toMillis,
} from "./format.js";

const HISTORY_LIMIT = 1000;

export function render(root, [jobId], ctx) {
  const title = h("h1", {}, "Job ", h("span", { class: "mono" }, shortId(jobId)));
  const actions = h("span", { class: "confirm", id: "job-actions" });
  const reason = h("div", { id: "job-reason" });
  const overview = h("div", { class: "panel", id: "job-overview" });
  const spec = h("div", { class: "panel", id: "job-spec" });
  const executions = h("div", { class: "panel", id: "job-executions" });
  const results = h("div", { class: "panel", id: "job-results" });
  const history = h("div", { class: "panel", id: "job-history" });
  const logsPre = h("pre", { class: "logs", id: "job-logs" });
  const logsStatus = h("span", { class: "muted small", id: "job-logs-status" }, "waiting for an execution…");
  const logs = h("div", { class: "panel" },
    h("div", { class: "logs-head" }, h("h2", {}, "Logs"), logsStatus), logsPre);
  replace(root, title, reason,
    h("div", { class: "grid2" }, overview, spec),
    h("div", { class: "stack" }, executions, logs, results, history));

  let job = null;
  let specVersion = -1;
  let confirming = false;
  const stream = logStream(jobId, logsPre, logsStatus, ctx);

  async function refresh() {
    const doc = await get(`${JOBS}/${encodeURIComponent(jobId)}`,
      { include: "history,executions", limit: HISTORY_LIMIT });
    if (!ctx.active()) return;
    job = doc.Job;
    const execs = doc.Executions?.Items || [];
    const events = doc.History?.Items || [];
    const state = jobState(job);
    replace(title, job.Name && job.Name !== job.ID ? job.Name : "Job ",
      h("span", { class: "mono muted" }, shortId(job.ID)), badge(state), actions);
    renderActions(state);
    renderReason(reason, job, events);
    renderOverview(overview, job, execs);
    if (job.Version !== specVersion) { renderSpec(spec, job); specVersion = job.Version; }
    renderExecutions(executions, execs);
    renderResults(results, execs);
    renderHistory(history, events);
    stream.update(job, execs);
  }

  function renderActions(state) {
    if (TERMINAL.has(state)) { replace(actions); return; }
    if (confirming) return;
    replace(actions, h("button", { type: "button", class: "danger", "data-action": "stop",
      on: { click: askStop } }, "Stop job"));
  }

  function askStop() {
    confirming = true;
    replace(actions, `Stop ${job?.Name || shortId(jobId)}?`,
      h("button", { type: "button", class: "danger", "data-action": "confirm-stop", on: { click: stop } }, "Yes, stop it"),
      h("button", { type: "button", "data-action": "cancel-stop",
        on: { click: () => { confirming = false; renderActions(jobState(job)); } } }, "Cancel"));
  }

  async function stop() {
    replace(actions, h("span", { class: "muted" }, "stopping…"));
    try {
      const out = await api("DELETE", `${JOBS}/${encodeURIComponent(job.ID)}`,
        { body: { reason: "stopped from the web UI" } });
      ctx.banner(`Stop requested${out?.EvaluationID ? ` (evaluation ${out.EvaluationID})` : ""}.`, "info");
    } catch (err) {
      ctx.banner(err, "alert"); // stays until the next action or view, unlike refresh errors
    } finally {
      confirming = false;
    }
    await refresh().catch(ctx.banner);
  }

  ctx.onDispose(() => stream.close());
  // Poll fast while the job can change, slowly once it is over.
  ctx.every(() => (job && TERMINAL.has(jobState(job)) ? 10000 : 1500), refresh);
}

// ---------------------------------------------------------------- sections

function renderReason(el, job, events) {
  const state = jobState(job);
  const message = job.State?.Message || "";
  const latest = [...events].reverse().find((e) => e.Type !== "ExecutionLevel"
    && (e.Event?.Details?.IsError === "true" || /Scheduling|Queueing/.test(e.Event?.Topic || "")));
  if (state === "Pending" || state === "Queued") {
    const why = message || latest?.Event?.Message || "waiting for the scheduler";
    replace(el, h("div", { class: "callout", id: "job-not-scheduled" },
      h("h2", {}, state === "Queued" ? "Queued: no node can run it yet" : "Not scheduled yet"),
      why, hintOf(latest)));
  } else if (state === "Failed" && (message || latest)) {
    replace(el, h("div", { class: "callout error" }, h("h2", {}, "Failed"),
      message || latest.Event.Message, hintOf(latest)));
  } else {
    replace(el);
  }
}

function hintOf(item) {
  const hint = item?.Event?.Details?.Hint;
  return hint ? h("div", { class: "small muted" }, `Hint: ${hint}`) : null;
}

function renderOverview(el, job, execs) {
  const counts = {};
  for (const e of execs) counts[computeState(e.ComputeState)] = (counts[computeState(e.ComputeState)] || 0) + 1;
  replace(el, h("h2", {}, "Overview"), facts([
    ["ID", h("span", { class: "mono" }, job.ID)],
    ["Name", job.Name],
    ["Namespace", job.Namespace],
    ["Type", job.Type],
    ["State", badge(jobState(job))],
    ["Message", job.State?.Message || ""],
    ["Count", String(job.Count ?? "")],
    ["Priority", String(job.Priority ?? 0)],
    ["Version", `${job.Version} (revision ${job.Revision})`],
    ["Created", `${time(job.CreateTime)} (${ago(job.CreateTime)})`],
    ["Modified", `${time(job.ModifyTime)} (${ago(job.ModifyTime)})`],
    ["Labels", h("span", {}, chips(job.Labels))],
    ["Executions", Object.entries(counts).map(([k, v]) => h("span", { class: "chip" }, `${k}: ${v}`))],
  ]));
}

function renderSpec(el, job) {
  const task = (job.Tasks || [])[0] || {};
  const engine = task.Engine || {};
  const params = engine.Params || {};
  const res = task.Resources || {};
  const timeouts = task.Timeouts || {};
  const inputs = (task.InputSources || []).map((i) => h("div", { class: "small" },
    h("span", { class: "chip" }, i.Source?.Type || "?"), ` → ${i.Target || ""}`, i.Alias ? ` (${i.Alias})` : ""));
  const constraints = (job.Constraints || []).map((c) =>
    h("span", { class: "chip" }, `${c.Key} ${c.Operator} ${(c.Values || []).join(",")}`));
  const list = (x) => (Array.isArray(x) ? x : []);
  const command = [params.Image, params.EntryModule, ...list(params.Entrypoint), ...list(params.Parameters)]
    .filter((x) => x !== undefined && x !== null && x !== "").join(" ");
  replace(el, h("h2", {}, "Spec"), facts([
    ["Task", task.Name],
    ["Engine", engine.Type],
    ["Command", command ? h("code", {}, command) : ""],
    ["Publisher", task.Publisher?.Type || "none"],
    ["Results", (task.ResultPaths || []).map((r) => h("span", { class: "chip" }, `${r.Name}: ${r.Path}`))],
    ["Inputs", inputs.length ? inputs : ""],
    ["Resources", ["CPU", "Memory", "Disk", "GPU"].filter((k) => res[k]).map((k) => `${k} ${res[k]}`).join(", ")],
    ["Network", task.Network?.Type || ""],
    ["Timeouts", Object.entries(timeouts).filter(([, v]) => v).map(([k, v]) => `${k} ${v}s`).join(", ")],
    ["Constraints", constraints.length ? constraints : ""],
    ["Env", task.Env ? h("span", {}, chips(task.Env)) : ""],
  ]), h("details", {}, h("summary", {}, "Full job spec (JSON)"),
    h("pre", { class: "json" }, JSON.stringify(job, null, 2))));
}

function renderExecutions(el, execs) {
  const rows = execs.map((e) => {
    const created = toMillis(e.CreateTime);
    const modified = toMillis(e.ModifyTime);
    const out = e.RunOutput;
    return h("tr", { "data-execution-id": e.ID },
      h("td", { class: "mono nowrap", title: e.ID }, shortId(e.ID)),
      h("td", { class: "mono nowrap" }, e.NodeID
        ? routeLink(`/nodes/${encodeURIComponent(e.NodeID)}`, shortId(e.NodeID), { title: e.NodeID }) : "—"),
      h("td", {}, badge(computeState(e.ComputeState))),
      h("td", {}, desiredState(e.DesiredState)),
      h("td", { class: "nowrap" }, time(e.CreateTime)),
      h("td", { class: "nowrap" }, duration(modified - created)),
      h("td", {}, out ? String(out.ExitCode ?? "") : ""),
      h("td", { class: "small" }, e.ComputeState?.Message || out?.ErrorMsg || e.DesiredState?.Message || ""));
  });
  replace(el, h("h2", {}, `Executions (${execs.length})`),
    table(["ID", "Node", "State", "Desired", "Created", "Took", "Exit", "Message"], rows,
      "No executions yet."));
}

function renderResults(el, execs) {
  const published = execs.filter((e) => e.PublishedResult?.Type);
  const rows = published.map((e) => {
    const params = {};
    for (const [k, v] of Object.entries(e.PublishedResult.Params || {})) params[k.toLowerCase()] = v;
    const url = params.url || params.presignedurl || "";
    return h("tr", {},
      h("td", { class: "mono nowrap" }, shortId(e.ID)),
      h("td", {}, e.PublishedResult.Type),
      h("td", { class: "mono small", "data-col": "cid" }, params.cid || "—"),
      h("td", { class: "small" }, url ? safeLink(url) : "—"));
  });
  replace(el, h("h2", {}, "Results"),
    table(["Execution", "Publisher", "CID", "Where"], rows, "No published results (yet)."));
}

function renderHistory(el, events) {
  const items = events.map((item) => {
    const ev = item.Event || {};
    const details = ev.Details || {};
    const exec = item.Type === "ExecutionLevel";
    const isError = details.IsError === "true";
    const done = /Completed|completed/.test(ev.Message || "") || details.NewState === "Completed";
    return h("li", { class: [exec ? "exec" : "", isError ? "error" : "", done && !isError ? "done" : ""] },
      h("div", { class: "when" }, time(ev.Timestamp || item.Time),
        exec ? ` · execution ${shortId(item.ExecutionID)}` : ` · job v${item.JobVersion}`),
      h("div", {}, h("span", { class: "topic" }, ev.Topic || ""), ev.Message || ""),
      details.Hint ? h("div", { class: "hint" }, `Hint: ${details.Hint}`) : null);
  });
  replace(el, h("h2", {}, "History"),
    items.length ? h("ol", { class: "timeline" }, items) : h("p", { class: "muted" }, "No events yet."));
}

// ---------------------------------------------------------------- logs

/** Follow the logs WebSocket of a job: opened once an execution exists, reopened (from the
 *  start) if it closes while the job still runs, left closed once the job is over. */
function logStream(jobId, pre, status, ctx) {
  let socket = null;
  let finished = false;
  let attempts = 0;

  function open(job, execution) {
    const terminal = TERMINAL.has(jobState(job));
    attempts++;
    const ws = openLogs(job.ID, { execution_id: execution.ID, follow: !terminal });
    socket = ws;
    let lines = 0;
    let opened = false;
    ws.addEventListener("open", () => { opened = true; });
    pre.replaceChildren();
    status.textContent = terminal ? "loading…" : `streaming from ${shortId(execution.ID)}…`;
    ws.addEventListener("message", (msg) => {
      let frame = null;
      try { frame = JSON.parse(msg.data); } catch { return; }
      if (frame?.error) {
        pre.appendChild(h("span", { class: "stderr" }, `[${frame.error}]\n`));
        return;
      }
      const value = frame?.value;
      if (!value) return;
      const line = String(value.Line ?? "");
      const text = line.endsWith("\n") ? line : line + "\n";
      const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.appendChild(value.Type === 2 ? h("span", { class: "stderr" }, text) : document.createTextNode(text));
      lines++;
      if (stick) pre.scrollTop = pre.scrollHeight;
    });
    ws.addEventListener("close", () => {
      if (socket !== ws) return;
      socket = null;
      if (terminal) finished = true;
      if (!opened) {
        // The handshake failed: unreachable, or the key was refused (401/403).
        status.textContent = "log stream refused or unreachable (is the API key still valid?)";
        status.dataset.state = "refused";
        return;
      }
      status.textContent = `${lines} line${lines === 1 ? "" : "s"} · ${terminal ? "complete" : "stream ended"}`;
      status.dataset.state = terminal ? "complete" : "ended";
    });
  }

  return {
    update(job, execs) {
      if (!ctx.active() || finished || socket) return;
      const terminal = TERMINAL.has(jobState(job));
      const live = execs.filter((e) => !isDiscarded(e) || computeState(e.ComputeState) === "Failed");
      // Once the job is over, a cancelled execution's logs are worth showing too.
      const candidates = live.length || !terminal ? live : execs.filter((e) => e.NodeID);
      const pick = [...candidates].sort((a, b) => toMillis(b.ModifyTime) - toMillis(a.ModifyTime))[0];
      if (!pick) {
        if (terminal) { finished = true; status.textContent = "no execution ran"; }
        else status.textContent = "waiting for an execution…";
        return;
      }
      // A stream that ends while the job runs is reopened (a bounded number of times); once
      // the job is over, it is read once more in full.
      if (attempts >= 30 && !terminal) return;
      open(job, pick);
    },
    close() {
      finished = true;
      if (socket) { const ws = socket; socket = null; ws.close(1000); }
    },
  };
}
