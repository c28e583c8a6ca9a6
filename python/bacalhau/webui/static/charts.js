// Small SVG charts drawn here (no library): stacked bars over time buckets and horizontal
// bars. Colours come from CSS classes (`fill-<State>`), so the page's CSP needs no inline style.

import { h, s } from "./dom.js";

const W = 560;

/** Stacked vertical bars: `buckets` = [{label, values: {series: n}}], series drawn in order. */
export function stackedBars(buckets, series, { height = 200, title = "" } = {}) {
  const pad = { l: 34, r: 8, t: 10, b: 24 };
  const plotW = W - pad.l - pad.r;
  const plotH = height - pad.t - pad.b;
  const totals = buckets.map((b) => series.reduce((sum, k) => sum + (b.values[k] || 0), 0));
  const top = niceMax(Math.max(1, ...totals));
  const slot = plotW / Math.max(1, buckets.length);
  const barW = Math.max(2, slot * 0.7);
  const y = (v) => pad.t + plotH - (v / top) * plotH;
  const grid = (top >= 2 ? [0, top / 2, top] : [0, top]).map((v) => {
    return [s("line", { class: "grid", x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v) }),
      s("text", { x: pad.l - 6, y: y(v) + 4, "text-anchor": "end" }, String(v))];
  });
  const bars = buckets.map((b, i) => {
    let base = 0;
    const x = pad.l + i * slot + (slot - barW) / 2;
    const parts = series.filter((k) => b.values[k]).map((k) => {
      const v = b.values[k];
      const rect = s("rect", { class: `fill-${k}`, x: x.toFixed(1), y: y(base + v).toFixed(1), width: barW.toFixed(1),
        height: Math.max(0, y(base) - y(base + v)).toFixed(1) }, s("title", {}, `${b.label}: ${v} ${k}`));
      base += v;
      return rect;
    });
    const label = i % Math.ceil(buckets.length / 6) === 0
      ? s("text", { x: (x + barW / 2).toFixed(1), y: height - 6, "text-anchor": "middle" }, b.label) : null;
    return [parts, label];
  });
  return s("svg", { class: "chart", viewBox: `0 0 ${W} ${height}`, role: "img", "aria-label": title },
    grid, s("line", { class: "axis", x1: pad.l, x2: W - pad.r, y1: y(0), y2: y(0) }), bars);
}

/** Horizontal bars: rows = [{label, value, cls}]. */
export function horizontalBars(rows, { title = "" } = {}) {
  const rowH = 24;
  const height = rows.length * rowH + 8;
  const labelW = 96;
  const max = Math.max(1, ...rows.map((r) => r.value));
  const plotW = W - labelW - 50;
  const parts = rows.map((r, i) => {
    const y = 4 + i * rowH;
    const w = (r.value / max) * plotW;
    return [s("text", { x: labelW - 8, y: y + 15, "text-anchor": "end" }, r.label),
      s("rect", { class: r.cls, x: labelW, y: y + 3, width: Math.max(r.value ? 2 : 0, w).toFixed(1), height: rowH - 8, rx: 3 }),
      s("text", { class: "value", x: (labelW + w + 6).toFixed(1), y: y + 15 }, String(r.value))];
  });
  return s("svg", { class: "chart", viewBox: `0 0 ${W} ${height}`, role: "img", "aria-label": title }, parts);
}

export function legend(series) {
  return h("div", { class: "legend" }, series.map((k) => h("span", {}, h("span", { class: `swatch fill-${k}` }), k)));
}

function niceMax(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
