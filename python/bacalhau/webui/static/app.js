// The page's entry point: hash routing (#/jobs, #/jobs/<id>, #/nodes, #/nodes/<id>,
// #/overview), the API health indicator, the error banner and the API key dialog.

import { api, apiKey, onKeyChange, setApiKey, setKeyPrompt } from "./api.js";
import { h, replace } from "./dom.js";
import * as jobs from "./jobs.js";
import * as job from "./job.js";
import * as nodes from "./nodes.js";
import * as overview from "./overview.js";

const ROUTES = [
  [/^\/jobs\/?$/, jobs, "jobs"],
  [/^\/jobs\/([^/]+)$/, job, "jobs"],
  [/^\/nodes\/?$/, nodes, "nodes"],
  [/^\/nodes\/([^/]+)$/, nodes, "nodes"],
  [/^\/overview\/?$/, overview, "overview"],
];

const viewEl = document.getElementById("view");
const bannerEl = document.getElementById("banner");
let current = null; // {path, dispose()}

// "error": a refresh failed (cleared when a refresh succeeds again); "alert": an action
// failed (stays until the next banner or view); "info": a notice.
let bannerKind = "";

function showBanner(error, kind = "error") {
  if (!error) { bannerEl.hidden = true; bannerKind = ""; return; }
  bannerKind = kind;
  const message = typeof error === "string" ? error : error.message;
  const hint = typeof error === "string" ? "" : error.hint;
  replace(bannerEl, message, hint ? h("div", { class: "small" }, hint) : null);
  bannerEl.className = kind === "info" ? "banner info" : "banner";
  bannerEl.hidden = false;
}

/** What a view gets: timers and cleanups bound to its lifetime, the banner, the hash query. */
function makeContext(path, query) {
  const timers = new Set();
  const cleanups = [];
  let active = true;
  const ctx = {
    path,
    query,
    hash: location.hash,
    active: () => active,
    banner: showBanner,
    /** Run `fn` now and then every `ms` (never two at once) while the view is shown. */
    every(ms, fn) {
      const tick = async () => {
        if (!active) return;
        try {
          await fn();
          if (bannerKind === "error") showBanner(null); // recovered; notices stay
        } catch (err) {
          if (active) showBanner(err);
        }
        if (active) timers.add(setTimeout(tick, typeof ms === "function" ? ms() : ms));
      };
      tick();
    },
    onDispose(fn) { cleanups.push(fn); },
    /** Put the view's state in the URL without re-routing. */
    setQuery(values) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(values)) if (v) params.set(k, v);
      const text = params.toString();
      history.replaceState(null, "", `#${path}${text ? "?" + text : ""}`);
      ctx.hash = location.hash;
    },
    dispose() {
      active = false;
      for (const t of timers) clearTimeout(t);
      for (const fn of cleanups) fn();
    },
  };
  return ctx;
}

function route() {
  const hash = location.hash.replace(/^#/, "");
  if (!hash || hash === "/") { location.replace("#/jobs"); return; }
  const [path, queryText = ""] = hash.split("?");
  if (current && current.hash === location.hash) return; // the view's own setQuery
  if (current) current.dispose();
  showBanner(null);
  for (const [pattern, module, nav] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", a.dataset.nav === nav));
    const ctx = makeContext(path, new URLSearchParams(queryText));
    current = ctx;
    viewEl.replaceChildren();
    const params = match.slice(1).map(decodeURIComponent);
    module.render(viewEl, params, ctx);
    return;
  }
  location.replace("#/jobs");
}

// ---------------------------------------------------------------- API key dialog

const dialog = document.getElementById("auth-dialog");
const keyInput = document.getElementById("auth-key");
const authButton = document.getElementById("auth-button");
let resolveKey = null;

function promptForKey(message) {
  document.getElementById("auth-message").textContent = message || "This node's API needs a key.";
  keyInput.value = "";
  if (!dialog.open) dialog.showModal();
  keyInput.focus();
  return new Promise((resolve) => { resolveKey = resolve; });
}

function closeDialog(key) {
  if (dialog.open) dialog.close();
  if (resolveKey) { resolveKey(key); resolveKey = null; }
}

document.getElementById("auth-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  closeDialog(keyInput.value.trim() || null);
});
document.getElementById("auth-cancel").addEventListener("click", () => closeDialog(null));
dialog.addEventListener("cancel", () => closeDialog(null));
authButton.addEventListener("click", () => {
  if (apiKey()) { setApiKey(""); return; }
  promptForKey("Enter an API key for this node.").then((key) => { if (key) setApiKey(key); });
});
onKeyChange((hasKey) => {
  authButton.hidden = false;
  authButton.textContent = hasKey ? "Forget API key" : "API key";
});
setKeyPrompt(promptForKey);
if (apiKey()) { authButton.hidden = false; authButton.textContent = "Forget API key"; }

// ---------------------------------------------------------------- health indicator

const health = document.getElementById("health");
async function pollHealth() {
  try {
    const [alive, version] = await Promise.all([
      api("GET", "/api/v1/agent/alive"),
      api("GET", "/api/v1/agent/version"),
    ]);
    health.className = alive?.Status === "OK" ? "health up" : "health down";
    health.textContent = `${alive?.Status === "OK" ? "connected" : "unhealthy"} · ${version?.GitVersion || "?"}`;
  } catch (err) {
    health.className = "health down";
    health.textContent = err.status === 401 ? "API key needed" : "unreachable";
  }
  setTimeout(pollHealth, 5000);
}

window.addEventListener("hashchange", route);
route();
pollHealth();
