/* app.js — lrq's dashboard (docs/daemon.md, "Dashboard"). The page holds no data: every
 * request goes to lrqd's /v1 API with the bearer token the person entered, kept in
 * sessionStorage (never in a URL). Live updates come from GET /v1/jobs/{id}/events read
 * with fetch() (so the Authorization header is sent), falling back to polling. Text from
 * the API only ever goes into textContent, never into HTML. */
"use strict";
(function () {
  const ROLES = {none: 0, read: 1, submit: 2, admin: 3};
  const STATES = ["queued", "running", "succeeded", "failed", "cancelled"];
  const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
  const PAGE = 20;
  const EXAMPLE = {
    name: "stories260K W4 LRQ",
    model: "models/stories260K/stories260K.bin",
    method: "lrq",
    weight: {bits: 4, group_size: 0},
    calibration: {path: "data/tinystories/calib.txt", samples: 32, seq_len: 256},
    lrq: {iterations: 100},
    export: ["hf"],
  };
  const S = {who: null, cleanup: null, pages: [], filter: "", limit: PAGE};

  /* ---- small DOM helpers ------------------------------------------------------------ */
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      const v = attrs[k];
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of kids) if (c !== null && c !== undefined) e.append(c);
    return e;
  }
  const $ = (sel, root) => (root || document).querySelector(sel);
  function fmtNum(v, p) { return v === null || v === undefined || !isFinite(v) ? "—" : (+v).toPrecision(p || 4); }
  function fmtDur(s) {
    if (s === null || s === undefined || !isFinite(s)) return "—";
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }
  function age(iso) { return iso ? fmtDur((Date.now() - Date.parse(iso)) / 1000) : "—"; }
  function bytes(n) {
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0, v = n;
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(1) : String(v)) + " " + u[i];
  }
  function base(p) { return typeof p === "string" ? p.split("/").filter(Boolean).slice(-2).join("/") : "—"; }

  /* ---- the API ---------------------------------------------------------------------- */
  function token() { return sessionStorage.getItem("lrq.token") || ""; }
  function headers(extra) {
    const h = Object.assign({}, extra || {});
    if (token()) h.Authorization = "Bearer " + token();
    return h;
  }
  class ApiError extends Error {
    constructor(status, e) {
      super(e && e.message ? e.message : "HTTP " + status);
      this.status = status;
      this.code = e && e.code;
      this.field = e && e.field;
    }
  }
  async function api(method, path, body, extra) {
    const init = {method, headers: headers(body !== undefined ? {"Content-Type": "application/json"} : extra),
                  cache: "no-store"};
    if (body !== undefined) init.body = body;
    const r = await fetch(path, init);
    const ct = r.headers.get("content-type") || "";
    const data = r.status === 204 ? null : ct.includes("json") ? await r.json().catch(() => null) : await r.text();
    if (!r.ok) throw new ApiError(r.status, data && data.error);
    return data;
  }
  function errText(e) { return e instanceof ApiError ? `${e.status} ${e.code || ""}: ${e.message}` : String(e.message || e); }
  function errBox(e) {
    return el("p", {class: "error", "data-status": e.status || "", "data-code": e.code || "", text: errText(e)});
  }

  function role() { return S.who ? ROLES[S.who.role] || 0 : 0; }
  function maySubmit() { return role() >= ROLES.submit; }
  function mayWrite(job) {
    if (!S.who) return false;
    if (!S.who.auth || role() >= ROLES.admin) return true;
    return role() >= ROLES.submit && job.owner === S.who.name;
  }

  /* ---- who am I: the token form and the banner -------------------------------------- */
  function banner(kind, text, code) {
    const b = $("#banner");
    b.hidden = !text;
    b.className = kind || "";
    b.textContent = text || "";
    b.dataset.code = code || "";
  }
  async function whoami() {
    try {
      S.who = await api("GET", "/v1/whoami");
      if (!S.who.auth) banner("warn", "Authentication is off: this lrqd runs with --no-auth and serves loopback only; " +
                                      "anyone on this machine can submit, cancel and delete jobs.", "no_auth");
      else banner("", "");
      $("#who").textContent = S.who.auth ? `${S.who.name} (${S.who.role})` : "no authentication";
    } catch (e) {
      S.who = null;
      $("#who").textContent = "";
      banner("error", errText(e), e.code || "error");
    }
    $("#nav-submit").hidden = !maySubmit();
  }

  /* ---- views ------------------------------------------------------------------------ */
  function route() {
    if (S.cleanup) { S.cleanup(); S.cleanup = null; }
    const view = $("#view");
    view.replaceChildren();
    const h = location.hash.replace(/^#/, "") || "/";
    let m;
    if ((m = h.match(/^\/jobs\/(\d+)$/))) S.cleanup = viewJob(view, +m[1]);
    else if (h === "/submit") S.cleanup = viewSubmit(view);
    else {
      /* "#/?limit=N": the page size (1..500, as the API allows). */
      const lim = Number(new URLSearchParams(h.split("?")[1] || "").get("limit"));
      if (lim >= 1 && lim <= 500 && lim !== S.limit) { S.limit = lim; S.pages = []; }
      S.cleanup = viewList(view);
    }
  }

  function progressBar(p, state) {
    const f = p && isFinite(p.fraction) ? Math.min(1, Math.max(0, p.fraction)) : state === "succeeded" ? 1 : 0;
    const fill = el("div", {class: "fill"});
    fill.style.width = (f * 100).toFixed(1) + "%";
    const label = (f * 100).toFixed(0) + "%" + (p && isFinite(p.eta_s) && !TERMINAL.has(state) ?
                                                " · ETA " + fmtDur(p.eta_s) : "");
    return el("div", {class: "progress", "data-fraction": f.toFixed(4)},
              el("div", {class: "bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100,
                         "aria-valuenow": (f * 100).toFixed(0)}, fill),
              el("span", {class: "plabel", text: label}));
  }

  function viewList(root) {
    let timer = 0, alive = true;
    const after = S.pages.length ? S.pages[S.pages.length - 1] : 0;
    const filter = el("select", {id: "state-filter", onchange: (e) => { S.filter = e.target.value; S.pages = []; route(); }},
                      el("option", {value: "", text: "all states"}),
                      ...STATES.map((s) => el("option", {value: s, text: s, selected: S.filter === s})));
    const body = el("tbody");
    const older = el("button", {id: "older", type: "button", text: "Older ›", disabled: true});
    const newer = el("button", {id: "newer", type: "button", text: "‹ Newer", disabled: !S.pages.length,
                                onclick: () => { S.pages.pop(); route(); }});
    const status = el("div", {id: "list-status"});
    root.append(el("section", {},
      el("div", {class: "toolbar"}, el("h2", {text: "Jobs"}), el("label", {for: "state-filter", text: "State"}), filter,
         maySubmit() ? el("a", {href: "#/submit", class: "button", id: "new-job", text: "Submit a job"}) : null),
      status,
      el("table", {id: "jobs", class: "jobs"},
        el("thead", {}, el("tr", {}, ...["Job", "State", "Method", "Model", "Progress", "Age", "Attempts"]
          .map((t) => el("th", {text: t})))), body),
      el("div", {class: "pager"}, newer, older)));
    async function load() {
      const q = new URLSearchParams({limit: String(S.limit)});
      if (S.filter) q.set("state", S.filter);
      if (after) q.set("after", String(after));
      try {
        const r = await api("GET", "/v1/jobs?" + q);
        if (!alive) return;
        status.replaceChildren();
        body.replaceChildren(...r.jobs.map((j) => el("tr", {"data-id": j.id, "data-state": j.state},
          el("td", {}, el("a", {href: `#/jobs/${j.id}`, text: `#${j.id}` + (j.name ? " " + j.name : "")})),
          el("td", {}, el("span", {class: "state " + j.state, text: j.state + (j.cancel_requested &&
                                                                              j.state === "running" ? " (cancelling)" : "")})),
          el("td", {text: j.method}),
          el("td", {text: base(j.spec && j.spec.model), title: j.spec && j.spec.model}),
          el("td", {}, progressBar(j.progress, j.state)),
          el("td", {text: age(j.created_at), title: j.created_at}),
          el("td", {text: `${j.attempts}/${j.max_attempts}`}))));
        if (!r.jobs.length) body.append(el("tr", {}, el("td", {colspan: 7, class: "muted", text: "no jobs"})));
        older.disabled = r.next_after === null;
        older.onclick = () => { S.pages.push(r.next_after); route(); };
      } catch (e) {
        if (!alive) return;
        status.replaceChildren(errBox(e));
      }
      if (alive) timer = setTimeout(load, 2000);
    }
    load();
    return () => { alive = false; clearTimeout(timer); };
  }

  /* Per-block curves from history samples and live progress: iteration → loss, the latest
   * value winning (a resumed block re-reports the iterations after its checkpoint). */
  function Curves() {
    const blocks = new Map();
    function get(b) {
      if (!blocks.has(b)) blocks.set(b, {pts: new Map(), end: null, endAt: -1, start: null, iters: 0});
      return blocks.get(b);
    }
    return {
      sample(p) {
        if (p.stage !== "reconstruct" || !(p.block > 0) || p.iteration === null || p.iteration === undefined) return;
        const c = get(p.block);
        if (p.iterations) c.iters = p.iterations;
        if (p.loss !== null && p.loss !== undefined) c.pts.set(p.iteration, p.loss);
      },
      block(b) {
        const c = get(b.block);
        c.start = b.loss_start;
        c.end = b.loss_end;
      },
      series() {
        return [...blocks.keys()].sort((a, b) => a - b).map((k) => {
          const c = blocks.get(k);
          const pts = [...c.pts.entries()].sort((a, b) => a[0] - b[0]);
          if (c.start !== null && !c.pts.has(0)) pts.unshift([0, c.start]);
          const last = pts.length ? pts[pts.length - 1][0] : 0;
          return {block: k, points: pts, end: c.end, endAt: c.end !== null ? Math.max(c.iters, last) : -1};
        });
      },
      size() { return blocks.size; },
    };
  }

  function viewJob(root, id) {
    const ctl = new AbortController();
    let alive = true, timer = 0, job = null, lastSeq = 0, resultsFor = "";
    const curves = Curves();
    const head = el("div", {class: "toolbar"});
    const actions = el("div", {id: "actions", class: "actions"});
    const actionErr = el("div", {id: "action-error"});
    const live = el("div", {id: "live", class: "live"});
    const chart = el("div", {id: "chart"});
    const results = el("div", {id: "results"});
    const spec = el("pre", {id: "spec", class: "spec"});
    const failure = el("div", {id: "failure"});
    root.append(el("section", {}, head, actions, actionErr, live,
                   el("h3", {text: "Reconstruction loss per block"}), chart, failure, results,
                   el("details", {open: true}, el("summary", {text: "Spec"}), spec)));

    function drawChart() {
      const svg = window.LrqChart.render(curves.series(), {});
      svg.dataset.blocks = String(curves.size());
      chart.replaceChildren(svg);
    }
    function drawLive(p) {
      const st = job.state;
      const rows = [["State", st + (job.cancel_requested && st === "running" ? " (cancel requested)" : "")]];
      if (p) {
        rows.push(["Stage", p.stage || "—"]);
        if (p.blocks) rows.push(["Block", `${p.block}/${p.blocks}`]);
        if (p.iterations) rows.push(["Iteration", `${p.iteration}/${p.iterations}`]);
        if (p.loss !== undefined) rows.push(["Loss", fmtNum(p.loss)]);
        if (!TERMINAL.has(st)) rows.push(["ETA", fmtDur(p.eta_s)]);
      }
      live.replaceChildren(progressBar(p, st),
        el("dl", {}, ...rows.flatMap(([k, v]) => [el("dt", {text: k}), el("dd", {"data-k": k.toLowerCase(), text: v})])),
        el("p", {class: "muted", id: "live-mode", "data-mode": live.dataset.mode || "", text: live.dataset.mode ?
          "updates: " + live.dataset.mode : ""}));
      live.dataset.state = st;
    }
    function drawHead() {
      head.replaceChildren(el("h2", {text: `Job #${job.id}` + (job.name ? " — " + job.name : "")}),
                           el("span", {class: "state " + job.state, id: "job-state", text: job.state}),
                           el("span", {class: "muted", text: `${job.method} · priority ${job.priority} · attempts ` +
                                                             `${job.attempts}/${job.max_attempts} · created ${age(job.created_at)} ago` +
                                                             (job.owner ? " · owner " + job.owner : "")}));
      actions.replaceChildren();
      if (!mayWrite(job)) return;
      if ((job.state === "queued" || job.state === "running") && !job.cancel_requested)
        actions.append(el("button", {id: "cancel", type: "button", text: "Cancel", onclick: () =>
          act("POST", `/v1/jobs/${id}/cancel`)}));
      if (job.state === "queued") {
        const inp = el("input", {id: "priority", type: "number", min: -100, max: 100, value: job.priority});
        actions.append(el("label", {for: "priority", text: "Priority"}), inp,
                       el("button", {id: "set-priority", type: "button", text: "Set", onclick: () =>
                         act("PATCH", `/v1/jobs/${id}`, JSON.stringify({priority: Number(inp.value)}))}));
      }
      if (TERMINAL.has(job.state)) {
        const del = el("button", {id: "delete", type: "button", class: "danger", text: "Delete"});
        del.onclick = () => {
          if (del.dataset.armed) act("DELETE", `/v1/jobs/${id}`).then((ok) => { if (ok) location.hash = "#/"; });
          else { del.dataset.armed = "1"; del.textContent = "Really delete (files too)"; }
        };
        actions.append(del);
      }
    }
    async function act(method, path, body) {
      actionErr.replaceChildren();
      try {
        const r = await api(method, path, body);
        if (r && r.id) { job = r; drawHead(); drawLive(job.progress); }
        return true;
      } catch (e) {
        actionErr.replaceChildren(errBox(e));
        return false;
      }
    }
    async function history() {
      for (;;) {
        const r = await api("GET", `/v1/jobs/${id}/progress?since=${lastSeq}`);
        r.samples.forEach((s) => curves.sample(s));
        r.blocks.forEach((b) => curves.block(b));
        lastSeq = r.last_seq;
        if (!r.more) break;
      }
    }
    function onState(j) {
      const was = job && job.state;
      job = j;
      drawHead();
      drawLive(job.progress);
      if (TERMINAL.has(job.state) && resultsFor !== job.state) {
        resultsFor = job.state;
        history().then(drawChart).catch(() => {});
        loadResults();
      } else if (was !== job.state) spec.textContent = JSON.stringify(job.spec, null, 2);
    }
    async function stream() {
      const r = await fetch(`/v1/jobs/${id}/events`, {headers: headers(), signal: ctl.signal, cache: "no-store"});
      if (!r.ok || !r.body) throw new ApiError(r.status, null);
      live.dataset.mode = "stream";
      drawLive(job.progress);
      const rd = r.body.getReader(), dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const {value, done} = await rd.read();
        if (done) break;
        buf += dec.decode(value, {stream: true});
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let ev = "message", data = "";
          for (const line of frame.split("\n")) {
            if (line.startsWith("event: ")) ev = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (!data || !alive) continue;
          const d = JSON.parse(data);
          if (ev === "state") onState(d);
          else if (ev === "progress") {
            job.progress = d;
            drawLive(d);
            curves.sample(d);
            drawChart();
          } else if (ev === "block") { curves.block(d); drawChart(); }
        }
      }
    }
    async function poll() {
      live.dataset.mode = "polling";
      while (alive && !TERMINAL.has(job.state)) {
        try {
          const j = await api("GET", `/v1/jobs/${id}`);
          await history();
          drawChart();
          onState(j);
        } catch (e) { actionErr.replaceChildren(errBox(e)); }
        await new Promise((res) => { timer = setTimeout(res, 2000); });
      }
    }
    async function loadResults() {
      results.replaceChildren(el("p", {class: "muted", text: "loading results…"}));
      const parts = [];
      if (job.state === "failed" || job.state === "cancelled") {
        failure.replaceChildren(el("h3", {text: job.state === "failed" ? "Error" : "Cancelled"}),
                                el("p", {class: "error", id: "job-error", text: job.error || "(no message)"}));
        try {
          const log = await api("GET", `/v1/jobs/${id}/log`, undefined, {Range: "bytes=-65536"});
          failure.append(el("h3", {text: "Log (last 64 KiB)"}), el("pre", {id: "log", class: "log", text: log || "(empty)"}));
        } catch (e) { failure.append(errBox(e)); }
      }
      try {
        const m = await api("GET", `/v1/jobs/${id}/metrics`);
        parts.push(metricsTables(m));
      } catch (e) {
        if (e.status !== 404) parts.push(errBox(e));
      }
      try {
        const a = await api("GET", `/v1/jobs/${id}/artifacts`);
        if (a.artifacts.length) parts.push(artifactsTable(a.artifacts));
      } catch (e) { parts.push(errBox(e)); }
      if (alive) results.replaceChildren(...parts);
    }
    function artifactsTable(list) {
      return el("div", {}, el("h3", {text: "Artifacts"}),
        el("table", {id: "artifacts"}, el("thead", {}, el("tr", {}, ...["Path", "Size", "sha256", ""].map((t) => el("th", {text: t})))),
          el("tbody", {}, ...list.map((a) => el("tr", {"data-path": a.path},
            el("td", {text: a.path}), el("td", {text: bytes(a.size), title: a.size + " bytes", "data-size": a.size}),
            el("td", {}, el("code", {class: "sha", text: a.sha256})),
            el("td", {}, download(a)))))));
    }
    function download(a) {
      const url = `/v1/jobs/${id}/artifacts/${a.path.split("/").map(encodeURIComponent).join("/")}`;
      const name = a.path.split("/").pop();
      if (S.who && !S.who.auth) return el("a", {href: url, download: name, class: "dl", text: "Download"});
      /* With a token the browser cannot send the header on a plain link: fetch it (large exports: lrqctl download). */
      const b = el("button", {type: "button", class: "dl", text: "Download"});
      b.onclick = async () => {
        b.disabled = true;
        try {
          const r = await fetch(url, {headers: headers()});
          if (!r.ok) throw new ApiError(r.status, (await r.json().catch(() => ({}))).error);
          const u = URL.createObjectURL(await r.blob());
          const link = el("a", {href: u, download: name});
          document.body.append(link);
          link.click();
          link.remove();
          setTimeout(() => URL.revokeObjectURL(u), 10000);
        } catch (e) { actionErr.replaceChildren(errBox(e)); }
        b.disabled = false;
      };
      return b;
    }
    function metricsTables(m) {
      const out = el("div", {id: "metrics"}, el("h3", {text: "Metrics"}));
      const fp = m.fp || {}, q = m.quantized || {};
      if (m.fp || m.quantized)
        out.append(el("table", {id: "eval"}, el("thead", {}, el("tr", {}, ...["", "FP", "quantized"].map((t) => el("th", {text: t})))),
          el("tbody", {},
            el("tr", {}, el("th", {text: "perplexity"}), el("td", {"data-k": "fp-ppl", text: fmtNum(fp.perplexity, 6)}),
               el("td", {"data-k": "q-ppl", text: fmtNum(q.perplexity, 6)})),
            el("tr", {}, el("th", {text: "KL divergence"}), el("td", {text: "—"}), el("td", {"data-k": "kl", text: fmtNum(q.kl_divergence)})),
            el("tr", {}, el("th", {text: "top-1 agreement"}), el("td", {text: "—"}),
               el("td", {"data-k": "top1", text: isFinite(q.top1_agreement) ? (100 * q.top1_agreement).toFixed(2) + " %" : "—"})),
            el("tr", {}, el("th", {text: "tokens"}), el("td", {text: fp.tokens ?? "—"}), el("td", {text: q.tokens ?? "—"})))));
      if (Array.isArray(m.blocks) && m.blocks.length)
        out.append(el("h4", {text: "Per-block losses"}),
          el("table", {id: "block-losses"}, el("thead", {}, el("tr", {}, ...["block", "loss before", "loss after", "seconds"].map((t) => el("th", {text: t})))),
            el("tbody", {}, ...m.blocks.map((b) => el("tr", {}, el("td", {text: b.block + 1}), el("td", {text: fmtNum(b.loss_start)}),
                                                     el("td", {text: fmtNum(b.loss_end)}), el("td", {text: fmtNum(b.seconds, 3)}))))));
      if (Array.isArray(m.layers) && m.layers.length)
        out.append(el("details", {}, el("summary", {text: `Per-layer weight errors (${m.layers.length})`}),
          el("table", {id: "layers"}, el("thead", {}, el("tr", {}, el("th", {text: "layer"}), el("th", {text: "relative error"}))),
            el("tbody", {}, ...m.layers.map((l) => el("tr", {}, el("td", {text: l.name}), el("td", {text: fmtNum(l.weight_rel_error)})))))));
      return out;
    }

    (async () => {
      try {
        job = await api("GET", `/v1/jobs/${id}`);
      } catch (e) { root.replaceChildren(errBox(e)); return; }
      spec.textContent = JSON.stringify(job.spec, null, 2);
      drawHead();
      drawLive(job.progress);
      try { await history(); } catch (e) { chart.append(errBox(e)); }
      drawChart();
      if (TERMINAL.has(job.state)) { resultsFor = job.state; loadResults(); return; }
      try {
        await stream();
      } catch (e) {
        if (!alive) return;
        await poll();
      }
    })();
    return () => { alive = false; ctl.abort(); clearTimeout(timer); };
  }

  /* A pretty-printer that records the line of every field path ("weight.bits",
   * "export[1]"), so that an API error naming a field is shown on its line. Formats as
   * JSON.stringify(v, null, 2) does. */
  function pretty(v) {
    const lines = [], where = {};
    (function emit(val, ind, path, prefix, comma) {
      where[path] = lines.length;
      if (val && typeof val === "object") {
        const arr = Array.isArray(val), ents = arr ? val.map((x, i) => [i, x]) : Object.entries(val);
        if (!ents.length) { lines.push(ind + prefix + (arr ? "[]" : "{}") + comma); return; }
        lines.push(ind + prefix + (arr ? "[" : "{"));
        ents.forEach(([k, x], i) => emit(x, ind + "  ", arr ? `${path}[${k}]` : path ? `${path}.${k}` : k,
                                         arr ? "" : JSON.stringify(k) + ": ", i < ents.length - 1 ? "," : ""));
        lines.push(ind + (arr ? "]" : "}") + comma);
      } else lines.push(ind + prefix + JSON.stringify(val) + comma);
    })(v, "", "", "", "");
    return {text: lines.join("\n"), where};
  }

  function viewSubmit(root) {
    const saved = sessionStorage.getItem("lrq.spec");
    const ta = el("textarea", {id: "spec-editor", spellcheck: "false", rows: 24, "aria-label": "job spec (JSON)"});
    ta.value = saved || JSON.stringify(EXAMPLE, null, 2);
    const gutter = el("div", {class: "gutter", id: "spec-errors"});
    const msg = el("div", {id: "submit-msg"});
    const marks = [];
    const LH = 18, PAD = 8;
    function place() { for (const m of marks) m.el.style.top = (PAD + m.line * LH - ta.scrollTop) + "px"; }
    function mark(line, field, text) {
      const e = el("div", {class: "field-error", "data-field": field || "", "data-line": line + 1,
                           text: "◀ " + text});
      marks.push({el: e, line});
      gutter.append(e);
      place();
    }
    function clear() { marks.length = 0; gutter.replaceChildren(); msg.replaceChildren(); }
    ta.addEventListener("scroll", place);
    const submit = el("button", {id: "submit", type: "button", text: "Submit"});
    submit.onclick = async () => {
      clear();
      sessionStorage.setItem("lrq.spec", ta.value);
      try {
        const j = await api("POST", "/v1/jobs", ta.value);
        location.hash = `#/jobs/${j.id}`;
      } catch (e) {
        msg.replaceChildren(errBox(e));
        let parsed;
        try { parsed = JSON.parse(ta.value); } catch (_) { parsed = undefined; }
        if (e.code === "invalid_json") {
          const m = /line (\d+)/.exec(e.message);
          if (m) mark(Math.max(0, +m[1] - 1), "", e.message);
        } else if (e.field && parsed !== undefined) {
          /* Normalize the text so that the field's line is known, then mark it (or its nearest parent). */
          const p = pretty(parsed);
          ta.value = p.text;
          let f = e.field;
          while (f && !(f in p.where)) {
            const up = f.replace(/(\.[^.[\]]*|\[\d+\])$/, "");
            f = up === f ? "" : up;
          }
          mark(f ? p.where[f] : 0, e.field, e.message);
          const lines = ta.value.split("\n"), ln = f ? p.where[f] : 0;
          const start = lines.slice(0, ln).reduce((n, l) => n + l.length + 1, 0);
          ta.focus();
          ta.setSelectionRange(start, start + (lines[ln] || "").length);
        }
      }
    };
    root.append(el("section", {},
      el("h2", {text: "Submit a job"}),
      maySubmit() ? null : el("p", {class: "error", text: "This token may only read: the API will refuse a submission (403)."}),
      el("p", {class: "muted", text: "The job spec as JSON (docs/api.md, \"Job spec\"). Paths are looked up in lrqd's data roots. " +
                                     "Errors from the API are shown next to the field they name."}),
      el("div", {class: "editor"}, ta, gutter),
      el("div", {class: "toolbar"}, submit,
         el("button", {type: "button", text: "Reset to the example", onclick: () => { ta.value = JSON.stringify(EXAMPLE, null, 2); clear(); }})),
      msg));
    return () => {};
  }

  /* ---- start ------------------------------------------------------------------------ */
  document.addEventListener("DOMContentLoaded", () => {
    $("#auth").addEventListener("submit", async (e) => {
      e.preventDefault();
      const t = $("#token").value.trim();
      if (t) sessionStorage.setItem("lrq.token", t);
      $("#token").value = "";
      await whoami();
      route();
    });
    $("#token-forget").addEventListener("click", async () => {
      sessionStorage.removeItem("lrq.token");
      await whoami();
      route();
    });
    window.addEventListener("hashchange", route);
    whoami().then(route);
  });
})();
