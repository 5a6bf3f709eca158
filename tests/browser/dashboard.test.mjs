// dashboard.test.mjs — lrqd's dashboard in headless Chromium (Debian's, driven by
// playwright-core), against the real lrqd and lrq-worker that run.sh started. TAP output.
//
// Every wait follows the jobs, not the clock: it gives up when neither the daemon's job
// list nor the page changed for STALL_S seconds. What the page shows is compared with an
// independent source: the API's own replies fetched here, and the artifact files' sha256
// computed here from the bytes on disk.
import { chromium } from "playwright-core";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

const E = process.env;
const URL_ = E.URL, STALL_MS = 1000 * Number(E.STALL_S || 60);
let n = 0, fails = 0;
const ok = (cond, name, diag) => {
  n++;
  if (!cond) fails++;
  console.log(`${cond ? "ok" : "not ok"} ${n} - ${name}`);
  if (diag) console.log("# " + String(diag).replace(/\n/g, "\n# "));
  return cond;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function api(method, path, token, body) {
  const h = token ? {Authorization: "Bearer " + token} : {};
  if (body !== undefined) h["Content-Type"] = "application/json";
  const r = await fetch(URL_ + path, {method, headers: h, body});
  const t = await r.text();
  let j = null;
  try { j = JSON.parse(t); } catch (_) { /* not JSON */ }
  return {status: r.status, json: j, text: t};
}
const sig = async () => (await api("GET", "/v1/jobs?limit=500", E.TOK_ADMIN)).text;
// until(cond, pageSig): cond() true → true; false once nothing changed for STALL_S.
async function until(cond, page) {
  let last = "", t = Date.now();
  for (;;) {
    if (await cond()) return true;
    const s = (await sig()) + (page ? await page.evaluate(() => document.body.innerText.length) : "");
    if (s !== last) { last = s; t = Date.now(); }
    if (Date.now() - t > STALL_MS) return false;
    await sleep(100);
  }
}
const jobOf = async (id) => (await api("GET", `/v1/jobs/${id}`, E.TOK_ADMIN)).json;

console.log("1..19");
const browser = await chromium.launch({
  executablePath: E.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const csp = [];
async function newPage() {
  const ctx = await browser.newContext({viewport: {width: 1280, height: 1000}});
  const page = await ctx.newPage();
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));
  });
  page.on("pageerror", (e) => csp.push("page error: " + e.message));
  return page;
}
const login = async (page, tok) => {
  await page.fill("#token", tok);
  await page.click("#token-use");
};

try {
  // 1. The page and its headers; a wrong token shows the API's own 401 message.
  const page = await newPage();
  const resp = await page.goto(URL_ + "/");
  const h = resp.headers();
  ok(resp.status() === 200 && /default-src 'none'/.test(h["content-security-policy"] || "") &&
     /script-src 'self'/.test(h["content-security-policy"]) && /^"[0-9a-f]{64}"$/.test(h.etag || ""),
     "GET / → 200 with a strict CSP and a sha256 ETag", `CSP: ${h["content-security-policy"]}; ETag ${h.etag}`);
  await login(page, "not-a-token");
  const want401 = (await api("GET", "/v1/whoami", "not-a-token")).json.error.message;
  const shown = await until(async () => (await page.textContent("#banner")).includes(want401), page);
  ok(shown && (await page.getAttribute("#banner", "data-code")) === "unauthorized",
     "a wrong token shows the API's error", await page.textContent("#banner"));

  // 2. The admin token: kept in sessionStorage only, never in the URL.
  await login(page, E.TOK_ADMIN);
  await until(async () => (await page.textContent("#who")).includes("boss (admin)"), page);
  const stored = await page.evaluate(() => sessionStorage.getItem("lrq.token"));
  ok(stored === E.TOK_ADMIN && !page.url().includes(E.TOK_ADMIN) && await page.isHidden("#banner"),
     "the admin token is accepted and kept in sessionStorage, not in the URL");

  // 3. A bad spec: the API's 422 field error next to the field's line in the editor.
  await page.goto(URL_ + "/#/submit");
  await page.fill("#spec-editor", E.SPEC_BAD);
  await page.click("#submit");
  const want422 = (await api("POST", "/v1/jobs", E.TOK_ADMIN, E.SPEC_BAD)).json.error;
  const fe = page.locator('.field-error[data-field="weight.bits"]');
  await until(async () => (await fe.count()) === 1, page);
  const feText = (await fe.count()) ? await fe.textContent() : "";
  const feLine = (await fe.count()) ? Number(await fe.getAttribute("data-line")) : -1;
  const edLines = (await page.inputValue("#spec-editor")).split("\n");
  ok(want422.field === "weight.bits" && feText.includes(want422.message) && /"bits": 99/.test(edLines[feLine - 1] || ""),
     "a bad spec shows the 422 field error on the field's line", `${feText} (line ${feLine}: ${edLines[feLine - 1]})`);

  // 4. The long job holds the slot; the short one, submitted from the page, waits queued.
  const A = (await api("POST", "/v1/jobs", E.TOK_ADMIN, E.SPEC_LONG)).json.id;
  await until(async () => (await jobOf(A)).state === "running");
  await page.fill("#spec-editor", E.SPEC_SHORT);
  await page.click("#submit");
  await until(async () => /#\/jobs\/\d+$/.test(page.url()), page);
  const B = Number(page.url().split("/").pop());
  await until(async () => (await page.textContent("#job-state").catch(() => "")) === "queued", page);
  ok(B > A && (await jobOf(B)).state === "queued" && await page.isVisible("#cancel") && await page.isVisible("#priority"),
     "submitting from the page opens the queued job, with cancel and priority offered to admin", `A=${A} B=${B}`);
  await page.fill("#priority", "5");
  await page.click("#set-priority");
  await until(async () => (await jobOf(B)).priority === 5, page);
  ok((await jobOf(B)).priority === 5, "priority changed from the page");
  // A second watcher whose event stream cannot be opened: it must fall back to polling.
  const pol = await newPage();
  await pol.route("**/v1/jobs/*/events", (r) => r.abort());
  await pol.goto(URL_ + "/");
  await login(pol, E.TOK_ADMIN);
  await until(async () => (await pol.textContent("#who")).includes("boss (admin)"), pol);
  await pol.goto(URL_ + `/#/jobs/${B}`);
  // Record what the live panel shows, from here on, every time the page redraws it.
  await page.evaluate(() => {
    window.__live = [];
    const live = document.querySelector("#live");
    new MutationObserver(() => {
      const p = live.querySelector(".progress");
      if (p) window.__live.push([live.dataset.state, Number(p.dataset.fraction), live.dataset.mode || ""]);
    }).observe(live, {childList: true});
  });

  // 5. The list: both jobs, newest first; the state filter.
  const list = await newPage();
  await list.goto(URL_ + "/");
  await login(list, E.TOK_ADMIN);
  await until(async () => (await list.locator(`#jobs tr[data-id="${A}"]`).count()) === 1, list);
  const ids = await list.$$eval("#jobs tbody tr[data-id]", (rs) => rs.map((r) => Number(r.dataset.id)));
  await list.selectOption("#state-filter", "running");
  await until(async () => {
    const r = await list.$$eval("#jobs tbody tr[data-id]", (rs) => rs.map((x) => x.dataset.state));
    return r.length >= 1 && r.every((s) => s === "running");
  }, list);
  const running = await list.$$eval("#jobs tbody tr[data-id]", (rs) => rs.map((r) => Number(r.dataset.id)));
  ok(ids.indexOf(B) === 0 && ids.indexOf(A) === 1 && running.length === 1 && running[0] === A,
     "the list shows the jobs newest first, and the state filter keeps the running one", `all ${ids}; running ${running}`);
  // Paging as the API pages: one job a page, Older follows next_after, Newer goes back.
  await list.selectOption("#state-filter", "");
  await list.goto(URL_ + "/#/?limit=1");
  const rowIds = async () => list.$$eval("#jobs tbody tr[data-id]", (rs) => rs.map((r) => Number(r.dataset.id)).join(","));
  await until(async () => (await rowIds()) === String(B), list);
  const p1 = await rowIds();
  await list.click("#older");
  await until(async () => (await rowIds()) === String(A), list);
  const p2 = await rowIds();
  await list.click("#newer");
  await until(async () => (await rowIds()) === String(B), list);
  const p3 = await rowIds();
  const apiPage = (await api("GET", "/v1/jobs?limit=1", E.TOK_ADMIN)).json;
  ok(p1 === String(B) && p2 === String(A) && p3 === String(B) && apiPage.next_after === B,
     "paging follows the API's pages (limit=1: Older, then Newer)", `pages ${p1} | ${p2} | ${p3}`);

  // 6. A read-only token: no cancel button; the API refuses it (403) if it tries.
  const ro = await newPage();
  await ro.goto(URL_ + "/");
  await login(ro, E.TOK_READ);
  await until(async () => (await ro.textContent("#who")).includes("reader (read)"), ro);
  await ro.goto(URL_ + `/#/jobs/${A}`);
  await until(async () => (await ro.textContent("#job-state").catch(() => "")) === "running", ro);
  const noButtons = (await ro.locator("#cancel").count()) === 0 && (await ro.locator("#delete").count()) === 0 &&
                    (await ro.isHidden("#nav-submit"));
  const tried = await ro.evaluate(async (id) => {
    const r = await fetch(`/v1/jobs/${id}/cancel`, {method: "POST",
                                                    headers: {Authorization: "Bearer " + sessionStorage.getItem("lrq.token")}});
    return [r.status, (await r.json()).error.code];
  }, A);
  ok(noButtons && tried[0] === 403 && tried[1] === "forbidden" && (await jobOf(A)).state === "running",
     "a read-only token sees no cancel button and gets 403 when it tries", `tried: ${tried}`);

  // 7. Cancel A from its page as admin: B starts, watched by the first page.
  await list.goto(URL_ + `/#/jobs/${A}`);
  await until(async () => await list.isVisible("#cancel"), list);
  await list.click("#cancel");
  const cancelled = await until(async () => (await jobOf(A)).state === "cancelled", list);
  ok(cancelled, "the cancel button cancels the running job");
  // Its page now shows why it ended and the worker's log (the file's tail, fetched with a Range).
  await until(async () => (await list.locator("#log").count()) === 1, list);
  const logFile = readFileSync(`${E.STATE}/jobs/${A}/log`, "utf8");
  const logShown = (await list.locator("#log").count()) ? await list.textContent("#log") : "";
  const errShown = (await list.locator("#job-error").count()) ? await list.textContent("#job-error") : "";
  ok(errShown === (await jobOf(A)).error && logShown.length > 0 && logFile.endsWith(logShown),
     "a cancelled job's page shows its error and its log", `error "${errShown}", log ${logShown.length} bytes`);
  const done = await until(async () => (await page.textContent("#job-state").catch(() => "")) === "succeeded", page);
  const live = await page.evaluate(() => window.__live);
  const run = live.filter(([s]) => s === "running").map(([, f]) => f);
  const mono = run.every((f, i) => i === 0 || f >= run[i - 1]);
  ok(done && (await jobOf(B)).state === "succeeded" && new Set(run).size >= 2 && mono && run[run.length - 1] > run[0] &&
     live.some(([, , m]) => m === "stream"),
     "the progress bar advances while the job runs (streamed events)", `fractions while running: ${run.join(" ")}`);

  // 8. The loss chart: one curve per finished block, its points those of the history.
  const hist = (await api("GET", `/v1/jobs/${B}/progress`, E.TOK_ADMIN)).json;
  await until(async () => (await page.locator("#chart path.curve").count()) === hist.blocks.length, page);
  const curves = await page.$$eval("#chart path.curve", (ps) => ps.map((p) => [Number(p.dataset.block), Number(p.dataset.points)]));
  const want = hist.blocks.map((b) => {
    const its = new Set(hist.samples.filter((s) => s.stage === "reconstruct" && s.block === b.block && s.loss > 0)
                                    .map((s) => s.iteration));
    return [b.block, its.size + (b.loss_start > 0 && !its.has(0) ? 1 : 0)];
  });
  ok(hist.blocks.length === 5 && JSON.stringify(curves) === JSON.stringify(want) && curves.every(([, p]) => p >= 2),
     "the loss chart has one curve per finished block with the history's points", `page ${JSON.stringify(curves)}, API ${JSON.stringify(want)}`);

  const polDone = await until(async () => (await pol.textContent("#job-state").catch(() => "")) === "succeeded", pol);
  await until(async () => (await pol.locator("#chart path.curve").count()) === hist.blocks.length, pol);
  const polCurves = await pol.$$eval("#chart path.curve", (ps) => ps.map((p) => [Number(p.dataset.block), Number(p.dataset.points)]));
  ok(polDone && (await pol.getAttribute("#live-mode", "data-mode")) === "polling" &&
     JSON.stringify(polCurves) === JSON.stringify(want),
     "without the event stream the page polls, and ends with the same chart", `mode ${await pol.getAttribute("#live-mode", "data-mode")}`);

  // 9. Metrics and artifacts against the API and the bytes on disk.
  await until(async () => (await page.locator("#artifacts tbody tr").count()) > 0 &&
                          (await page.locator('[data-k="q-ppl"]').count()) === 1, page);
  const m = (await api("GET", `/v1/jobs/${B}/metrics`, E.TOK_ADMIN)).json;
  const qppl = Number(await page.textContent('[data-k="q-ppl"]'));
  const fppl = Number(await page.textContent('[data-k="fp-ppl"]'));
  ok(Math.abs(qppl - m.quantized.perplexity) <= 5e-6 * m.quantized.perplexity &&
     Math.abs(fppl - m.fp.perplexity) <= 5e-6 * m.fp.perplexity && (await page.locator("#block-losses tbody tr").count()) === 5,
     "the metrics table shows the job's perplexities (6 digits) and per-block losses", `FP ${fppl}, quantized ${qppl}`);
  const arts = (await api("GET", `/v1/jobs/${B}/artifacts`, E.TOK_ADMIN)).json.artifacts;
  const rows = await page.$$eval("#artifacts tbody tr", (rs) => rs.map((r) => [r.dataset.path,
    Number(r.children[1].dataset.size), r.querySelector("code.sha").textContent]));
  const disk = arts.map((a) => createHash("sha256").update(readFileSync(`${E.STATE}/jobs/${B}/artifacts/${a.path}`)).digest("hex"));
  ok(arts.length > 0 && JSON.stringify(rows) === JSON.stringify(arts.map((a) => [a.path, a.size, a.sha256])) &&
     arts.every((a, i) => a.sha256 === disk[i]),
     "artifacts: path, size and sha256 as registered, and the sha256 is the file's", `${arts.length} files`);
  const dl = await Promise.all([page.waitForEvent("download"), page.locator("#artifacts button.dl").first().click()]);
  const dlBytes = readFileSync(await dl[0].path());
  ok(createHash("sha256").update(dlBytes).digest("hex") === arts[0].sha256,
     "the download button fetches the artifact with the token (sha256 matches)", `${arts[0].path}, ${dlBytes.length} bytes`);

  await page.screenshot({path: `${E.OUT}/job.png`, fullPage: true});
  await list.goto(URL_ + "/");
  await until(async () => (await list.locator("#jobs tbody tr[data-id]").count()) >= 2, list);
  await list.screenshot({path: `${E.OUT}/list.png`});

  // 10. Without a token file (loopback), the page says that authentication is off.
  const open = await newPage();
  await open.goto(E.URL_OPEN + "/");
  await until(async () => (await open.getAttribute("#banner", "data-code")) === "no_auth", open);
  ok((await open.textContent("#banner")).includes("Authentication is off"), "with --no-auth on loopback the page says so",
     await open.textContent("#banner"));

  const violations = [];
  for (const p of [page, list, ro, open, pol]) violations.push(...(await p.evaluate(() => window.__csp)));
  ok(violations.length === 0 && csp.length === 0, "no CSP violation and no script error on any page",
     [...violations, ...csp].join("; ") || `screenshots: ${E.OUT}/job.png, ${E.OUT}/list.png`);
} catch (e) {
  ok(false, "the browser test ran to its end", e.stack);
} finally {
  await browser.close();
}
process.exit(fails ? 1 : 0);
