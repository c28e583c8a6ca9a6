// #/jobs: the jobs table, newest first, with paging, filters (state, type, labels) and a live
// refresh. Without a state or type filter the server pages (NextToken); the API has no state
// or type filter, so with one the page reads every job matching the labels and pages here.

import { JOBS, get } from "./api.js";
import { badge, chips, h, replace, routeLink, table } from "./dom.js";
import { JOB_STATES, JOB_TYPES, ago, jobState, shortId, time } from "./format.js";

const PAGE_SIZES = [10, 20, 50, 100];

function select(name, label, options, value) {
  return h("label", {}, label,
    h("select", { name, "data-filter": name },
      options.map(([v, text]) => h("option", { value: v, selected: v === value }, text))));
}

export function render(root, _params, ctx) {
  const q = ctx.query;
  const state = {
    state: q.get("state") || "",
    type: q.get("type") || "",
    labels: q.get("labels") || "",
    size: pageSize(q.get("size")),
    page: 0,
    tokens: [""], // tokens[i] = NextToken that starts page i (server paging)
    live: true,
  };

  const labelsInput = h("input", { type: "text", name: "labels", placeholder: "env=prod,tier!=web",
    value: state.labels, "data-filter": "labels", size: "24" });
  const liveBox = h("input", { type: "checkbox", checked: true, "data-filter": "live" });
  const summary = h("span", { class: "muted", id: "jobs-summary" });
  const prev = h("button", { type: "button", "data-action": "prev" }, "‹ Newer");
  const next = h("button", { type: "button", "data-action": "next" }, "Older ›");
  const pageLabel = h("span", { class: "muted" });
  const tableHolder = h("div", { id: "jobs-table" });

  const toolbar = h("div", { class: "toolbar" },
    select("state", "State", [["", "Any state"], ...JOB_STATES.map((s) => [s, s])], state.state),
    select("type", "Type", [["", "Any type"], ...JOB_TYPES.map((t) => [t, t])], state.type),
    h("label", {}, "Labels", labelsInput),
    select("size", "Per page", [...new Set([...PAGE_SIZES, state.size])].sort((a, b) => a - b)
      .map((n) => [String(n), String(n)]), String(state.size)),
    h("label", { class: "check" }, liveBox, "Live refresh"),
    h("span", { class: "spacer" }),
    summary);
  replace(root,
    h("h1", {}, "Jobs"),
    toolbar,
    tableHolder,
    h("div", { class: "pager" }, prev, pageLabel, next));

  const restart = () => {
    state.page = 0;
    state.tokens = [""];
    ctx.setQuery({ state: state.state, type: state.type, labels: state.labels,
      size: state.size === 20 ? "" : String(state.size) });
    load().catch((err) => ctx.banner(err));
  };
  toolbar.querySelectorAll("select").forEach((el) => el.addEventListener("change", () => {
    state[el.name] = el.name === "size" ? Number(el.value) : el.value;
    restart();
  }));
  labelsInput.addEventListener("change", () => { state.labels = labelsInput.value.trim(); restart(); });
  liveBox.addEventListener("change", () => { state.live = liveBox.checked; });
  prev.addEventListener("click", () => { if (state.page > 0) { state.page--; load().catch(ctx.banner); } });
  next.addEventListener("click", () => { state.page++; load().catch((err) => { state.page--; ctx.banner(err); }); });

  let loading = null;
  async function load() {
    // Serialise loads: a filter change during a refresh waits for it, then reloads.
    while (loading) await loading.catch(() => {});
    loading = fetchPage().finally(() => { loading = null; });
    return loading;
  }

  async function fetchPage() {
    const labels = state.labels ? [state.labels] : undefined;
    let items;
    let more;
    let total = null;
    if (!state.state && !state.type) {
      const token = state.tokens[state.page];
      const doc = await get(JOBS, token
        ? { next_token: token, labels }
        : { limit: state.size, order_by: "created_at", reverse: true, labels });
      items = doc?.Items || [];
      state.tokens[state.page + 1] = doc?.NextToken || "";
      more = Boolean(doc?.NextToken);
    } else {
      const doc = await get(JOBS, { limit: 0, order_by: "created_at", reverse: true, labels });
      const all = (doc?.Items || []).filter((j) =>
        (!state.state || jobState(j) === state.state) && (!state.type || j.Type === state.type));
      total = all.length;
      items = all.slice(state.page * state.size, (state.page + 1) * state.size);
      more = (state.page + 1) * state.size < all.length;
    }
    if (!ctx.active()) return;
    const now = Date.now();
    const rows = items.map((j) => h("tr", { "data-job-id": j.ID },
      h("td", { class: "nowrap mono" }, routeLink(`/jobs/${encodeURIComponent(j.ID)}`, shortId(j.ID), { title: j.ID })),
      h("td", { class: "nowrap" }, j.Name && j.Name !== j.ID ? j.Name : h("span", { class: "muted" }, "—")),
      h("td", {}, j.Type || ""),
      h("td", { "data-col": "state" }, badge(jobState(j))),
      h("td", { class: "nowrap", title: time(j.CreateTime) }, ago(j.CreateTime, now)),
      h("td", { class: "nowrap", title: time(j.ModifyTime) }, ago(j.ModifyTime, now)),
      h("td", {}, chips(j.Labels)),
      h("td", { class: "small muted" }, j.State?.Message ? truncate(j.State.Message, 90) : "")));
    replace(tableHolder, table(["ID", "Name", "Type", "State", "Created", "Modified", "Labels", "Message"],
      rows, state.state || state.type || state.labels ? "No job matches these filters." : "No jobs yet: submit one with `bacalhau job run`."));
    prev.disabled = state.page === 0;
    next.disabled = !more;
    pageLabel.textContent = `page ${state.page + 1}`;
    summary.textContent = total === null ? `${items.length} shown` : `${total} matching`;
  }

  ctx.every(() => 2000, async () => {
    if (state.live || !tableHolder.firstChild) await load();
  });
}

/** `?size=` of the URL: 1..100 rows a page, 20 when absent or invalid. */
function pageSize(text) {
  const n = Number(text);
  return Number.isInteger(n) && n >= 1 && n <= 100 ? n : 20;
}

function truncate(text, n) {
  const t = String(text);
  return t.length > n ? t.slice(0, n - 1) + "…" : t;
}
