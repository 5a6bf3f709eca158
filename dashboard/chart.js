/* chart.js — per-block reconstruction-loss curves as hand-written SVG (docs/daemon.md,
 * "Dashboard", says why no charting library): x = iteration (linear), y = loss on a
 * log10 scale, one polyline per block. Built with createElementNS and presentation
 * attributes only, so the page's CSP needs no 'unsafe-inline'. */
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
                   "#7f7f7f", "#bcbd22"];

  function node(tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  /* Round numbers for an axis: decades on a log axis (with 2 and 5 when it spans < 2.5). */
  function logTicks(lo, hi) {
    const t = [];
    const span = hi - lo;
    for (let d = Math.floor(lo); d <= Math.ceil(hi); d++)
      for (const m of span < 2.5 ? [1, 2, 5] : [1]) {
        const v = Math.log10(m) + d;
        if (v >= lo - 1e-9 && v <= hi + 1e-9) t.push(v);
      }
    return t;
  }

  function linTicks(max) {
    if (max <= 0) return [0];
    const raw = max / 5, p = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
    const t = [];
    for (let v = 0; v <= max + 1e-9; v += step) t.push(v);
    return t;
  }

  function fmt(v) {
    if (v === 0) return "0";
    const a = Math.abs(v);
    return a >= 1e4 || a < 1e-3 ? v.toExponential(0) : String(+v.toPrecision(3));
  }

  /* series: [{block, points: [[iteration, loss], …] sorted, end: loss_end or null, endAt}].
   * Returns the <svg>; every curve is <path class="curve" data-block data-points>. */
  function render(series, opts) {
    const W = (opts && opts.width) || 720, H = (opts && opts.height) || 340;
    const m = {l: 64, r: 110, t: 14, b: 44};
    const svg = node("svg", {viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
                             "aria-label": "reconstruction loss per block against iteration, log scale"});
    const pos = [];
    let xmax = 1;
    for (const s of series) {
      for (const [x, y] of s.points) { if (y > 0 && isFinite(y)) pos.push(y); if (x > xmax) xmax = x; }
      if (s.end > 0) { pos.push(s.end); if (s.endAt > xmax) xmax = s.endAt; }
    }
    if (!pos.length) {
      svg.appendChild(node("text", {x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty"},
                           "no reconstruction samples yet"));
      return svg;
    }
    let lo = Math.log10(Math.min(...pos)), hi = Math.log10(Math.max(...pos));
    if (hi - lo < 0.3) { lo -= 0.15; hi += 0.15; }
    lo = Math.floor(lo * 10) / 10; hi = Math.ceil(hi * 10) / 10;
    const pw = W - m.l - m.r, ph = H - m.t - m.b;
    const X = (x) => m.l + (x / xmax) * pw;
    const Y = (y) => m.t + (1 - (Math.log10(y) - lo) / (hi - lo)) * ph;
    const axes = node("g", {class: "axes"});
    for (const v of logTicks(lo, hi)) {
      const y = Y(Math.pow(10, v));
      axes.appendChild(node("line", {x1: m.l, x2: m.l + pw, y1: y, y2: y, class: "grid"}));
      axes.appendChild(node("text", {x: m.l - 6, y: y + 4, "text-anchor": "end"}, fmt(Math.pow(10, v))));
    }
    for (const v of linTicks(xmax)) {
      const x = X(v);
      axes.appendChild(node("line", {x1: x, x2: x, y1: m.t + ph, y2: m.t + ph + 4, class: "tick"}));
      axes.appendChild(node("text", {x: x, y: m.t + ph + 18, "text-anchor": "middle"}, fmt(v)));
    }
    axes.appendChild(node("rect", {x: m.l, y: m.t, width: pw, height: ph, class: "frame"}));
    axes.appendChild(node("text", {x: m.l + pw / 2, y: H - 6, "text-anchor": "middle"}, "iteration"));
    axes.appendChild(node("text", {x: 14, y: m.t + ph / 2, "text-anchor": "middle",
                                   transform: `rotate(-90 14 ${m.t + ph / 2})`}, "loss (log scale)"));
    svg.appendChild(axes);
    series.forEach((s, i) => {
      const color = PALETTE[i % PALETTE.length];
      const pts = s.points.filter(([, y]) => y > 0 && isFinite(y));
      const g = node("g", {class: "series", "data-block": s.block});
      const d = pts.map(([x, y], k) => `${k ? "L" : "M"}${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join("");
      const path = node("path", {d: d || "M0,0", class: "curve", stroke: color, fill: "none", "stroke-width": 1.6,
                                 "data-block": s.block, "data-points": pts.length});
      path.appendChild(node("title", {}, `block ${s.block}: ${pts.length} points`));
      g.appendChild(path);
      if (pts.length <= 60)
        for (const [x, y] of pts)
          g.appendChild(node("circle", {cx: X(x).toFixed(1), cy: Y(y).toFixed(1), r: 2.2, fill: color, class: "pt"}));
      if (s.end > 0 && s.endAt >= 0) {
        const mk = node("circle", {cx: X(s.endAt).toFixed(1), cy: Y(s.end).toFixed(1), r: 4, fill: "none",
                                   stroke: color, "stroke-width": 1.5, class: "end"});
        mk.appendChild(node("title", {}, `block ${s.block}: loss after rounding ${s.end.toPrecision(4)}`));
        g.appendChild(mk);
      }
      const ly = m.t + 10 + i * 16;
      g.appendChild(node("line", {x1: m.l + pw + 10, x2: m.l + pw + 28, y1: ly, y2: ly, stroke: color,
                                  "stroke-width": 2}));
      g.appendChild(node("text", {x: m.l + pw + 32, y: ly + 4, class: "legend"}, `block ${s.block}`));
      svg.appendChild(g);
    });
    return svg;
  }

  window.LrqChart = {render: render, logTicks: logTicks};
})();
