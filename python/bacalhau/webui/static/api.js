// The REST client of the page: the public API only (reference §3), JSON in and out, an
// `Authorization: Bearer <key>` header when the user gave a key. The key lives in
// sessionStorage (this tab only) and is asked for when the API answers 401; a refused key is
// dropped. The logs WebSocket cannot carry headers: the key is offered as the subprotocols
// `bacalhau-auth, <base64url key>` (never in the URL, which servers and proxies log).

const KEY_NAME = "bacalhau.apiKey";
const WS_AUTH_PROTOCOL = "bacalhau-auth";
export const JOBS = "/api/v1/orchestrator/jobs";
export const NODES = "/api/v1/orchestrator/nodes";

export class ApiError extends Error {
  constructor(status, body, fallback) {
    const message = (body && (body.Message || body.message || body.Error)) || fallback || `HTTP ${status}`;
    super(message);
    this.status = status;
    this.body = body;
    this.hint = body?.Hint || "";
  }
}

let askForKey = null; // async (message) => key | null
let pendingAsk = null;
let declined = false; // the user cancelled the prompt: do not ask again on every refresh
const keyListeners = new Set();

/** Install the function that asks the user for a key (returns null when they decline). */
export function setKeyPrompt(fn) { askForKey = fn; }
export function onKeyChange(fn) { keyListeners.add(fn); }
export function apiKey() {
  try { return sessionStorage.getItem(KEY_NAME) || ""; } catch { return ""; }
}
export function setApiKey(key) {
  declined = false;
  try {
    if (key) sessionStorage.setItem(KEY_NAME, key);
    else sessionStorage.removeItem(KEY_NAME);
  } catch { /* storage disabled: the key only lasts for this request */ }
  for (const fn of keyListeners) fn(Boolean(key));
}

function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function withQuery(path, query) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) v.forEach((x) => params.append(k, String(x)));
    else params.append(k, String(v));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

function reasonOf(error) {
  return error.body?.Details?.reason || error.message;
}

async function keyAfter401(error, sentKey) {
  // A refused key is forgotten (unless another request already stored a new one).
  if (sentKey && apiKey() === sentKey) setApiKey("");
  if (!askForKey || declined) return null;
  const message = sentKey
    ? `The API refused this key (${reasonOf(error)}). Enter a valid API key.`
    : "This node's API needs an API key.";
  // Concurrent 401s share one prompt.
  pendingAsk ??= askForKey(message).then((key) => {
    if (!key) declined = true;
    return key;
  }).finally(() => { pendingAsk = null; });
  return pendingAsk;
}

/** One API call; retries after a 401 once the user gave a (new) key. */
export async function api(method, path, { query, body } = {}) {
  for (let attempt = 0; ; attempt++) {
    const sentKey = apiKey();
    const headers = { Accept: "application/json", ...authHeaders() };
    const init = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(withQuery(path, query), init);
    } catch (err) {
      throw new ApiError(0, null, `cannot reach the API (${err.message}): is the node running?`);
    }
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (resp.ok) return data;
    const error = new ApiError(resp.status, data, text.slice(0, 200));
    if (resp.status === 401) {
      const key = attempt < 3 ? await keyAfter401(error, sentKey) : null;
      if (key) { setApiKey(key); continue; }
      // The server's hint names the CLI's environment variables: not what a page user needs.
      error.hint = "This API needs a key: use the API key button at the top right.";
      for (const fn of keyListeners) fn(Boolean(apiKey()));
    } else if (resp.status === 403) {
      error.message = `Forbidden: ${reasonOf(error)}.`;
      error.hint = `${error.hint ? `${error.hint}. ` : ""}This API key may not do that: to use `
        + "another key, click “Forget API key” at the top right.";
    }
    throw error;
  }
}

export const get = (path, query) => api("GET", path, { query });

/** The logs WebSocket URL of a job: no credential in it. */
function logsUrl(jobId, query) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${withQuery(`${JOBS}/${encodeURIComponent(jobId)}/logs`, query)}`;
}

function base64url(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Open the logs WebSocket of a job, offering the API key (if any) as a subprotocol: the
 *  server checks it like a Bearer key and answers with `bacalhau-auth` only. */
export function openLogs(jobId, query) {
  const key = apiKey();
  const url = logsUrl(jobId, query);
  return key ? new WebSocket(url, [WS_AUTH_PROTOCOL, base64url(key)]) : new WebSocket(url);
}
