// Building DOM nodes without HTML strings: every text from the API goes through a text node
// (or an attribute set with setAttribute), so nothing it contains is ever parsed as markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else if (child instanceof Node) parent.appendChild(child);
    else parent.appendChild(document.createTextNode(String(child)));
  }
}

function apply(el, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    else if (key === "on") for (const [type, fn] of Object.entries(value)) el.addEventListener(type, fn);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "text") el.textContent = String(value);
    else if (key === "hidden" || key === "disabled" || key === "checked" || key === "selected") el[key] = Boolean(value);
    else if (key === "value") el.value = String(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
}

/** An HTML element: h("a", {href: "#/jobs", class: "x"}, "text", child, [more]). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  apply(el, props);
  append(el, children);
  return el;
}

/** An SVG element, same calling convention as h(). */
export function s(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, props);
  append(el, children);
  return el;
}

/** Replace the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A link inside the page: only hash routes, so an id cannot turn into another URL. */
export function routeLink(route, text, props = {}) {
  return h("a", { ...props, href: "#" + route }, text);
}

/** An external link only for http(s) URLs; anything else is shown as text. */
export function safeLink(url, text) {
  let parsed = null;
  try { parsed = new URL(String(url)); } catch { parsed = null; }
  if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
    return h("span", { class: "mono" }, text ?? String(url ?? ""));
  }
  return h("a", { href: parsed.href, target: "_blank", rel: "noopener noreferrer" }, text ?? parsed.href);
}

export function badge(text, extra = "") {
  const value = String(text || "—");
  return h("span", { class: ["badge", /^[A-Za-z]+$/.test(value) ? value : "", extra] }, value);
}

export function table(headers, rows, emptyText = "Nothing here yet.") {
  const body = rows.length
    ? rows
    : [h("tr", {}, h("td", { class: "empty", colspan: String(headers.length) }, emptyText))];
  return h("div", { class: "table-wrap" },
    h("table", {},
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
      h("tbody", {}, body)));
}

export function facts(pairs) {
  return h("dl", { class: "facts" },
    pairs.filter(([, v]) => v !== null && v !== undefined && v !== "" && !(Array.isArray(v) && !v.length))
      .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

export function chips(map, skip = () => false) {
  const entries = Object.entries(map || {}).filter(([k]) => !skip(k)).sort(([a], [b]) => a.localeCompare(b));
  if (!entries.length) return h("span", { class: "muted" }, "—");
  return entries.map(([k, v]) => h("span", { class: "chip", title: `${k}=${v}` }, `${k}=${v}`));
}
