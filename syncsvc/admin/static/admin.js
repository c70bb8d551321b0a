// syncsvc admin page: vanilla JS, no framework, nothing loaded from elsewhere.
// The token the user types is kept in sessionStorage (this tab only) and sent as
// "Authorization: Bearer ..." on every API call; the page itself holds no data.
// Everything server-provided is put into the DOM with textContent, never as HTML.
"use strict";

(() => {
  const TOKEN_KEY = "syncsvc.adminToken";
  const IDLE_REFRESH_MS = 15000;   // status and runs, when nothing is running
  const RUN_POLL_MS = 1000;        // a run started from this page, until it ends
  const $ = (id) => document.getElementById(id);

  let idleTimer = null;
  const pending = new Map();       // run id -> {mode, dry_run, started, report}: started here

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail || `HTTP ${status}`);
      this.status = status;
    }
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  async function api(method, path, body) {
    const headers = { "Authorization": `Bearer ${token()}`, "Accept": "application/json" };
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (response.status === 401) {
      signOut("Your token was refused (unknown, revoked or expired). Sign in again.");
      throw new ApiError(401, data && data.detail);
    }
    if (!response.ok) throw new ApiError(response.status, data && data.detail);
    return data;
  }

  // ---- small DOM helpers -------------------------------------------------------------------
  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function when(iso) {
    if (!iso) return "never";
    const d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toLocaleString();
  }

  function took(run) {
    if (!run.started || !run.ended) return "";
    const s = (new Date(run.ended) - new Date(run.started)) / 1000;
    return s < 60 ? `${s.toFixed(1)} s` : `${Math.round(s / 60)} min`;
  }

  function ago(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 90) return `${seconds} s ago`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
    return `${Math.round(seconds / 3600)} h ago`;
  }

  // ---- sign in / out -----------------------------------------------------------------------
  function showSignedIn(signedIn) {
    $("sign-in").hidden = signedIn;
    $("dashboard").hidden = !signedIn;
    $("who").hidden = !signedIn;
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    clearTimeout(idleTimer);
    pending.clear();
    showSignedIn(false);
    $("token").value = "";
    const error = $("sign-in-error");
    error.textContent = message || "";
    error.hidden = !message;
  }

  async function signIn(event) {
    event.preventDefault();
    const value = $("token").value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $("sign-in-button").disabled = true;
    try {
      await api("GET", "/admin/status");
      $("token").value = "";
      $("sign-in-error").hidden = true;
      showSignedIn(true);
      await refreshAll();
    } catch (err) {
      if (err.status !== 401) {
        const detail = err.status === 403 ? "This token lacks the admin scope." : err.message;
        signOut(detail);
      }
    } finally {
      $("sign-in-button").disabled = false;
    }
  }

  // ---- status ------------------------------------------------------------------------------
  function renderStatus(s) {
    $("version").textContent = `v${s.version}`;
    $("running").hidden = !s.running;
    const store = s.store || {};
    const facts = [
      ["Last success", s.last_success ? `${when(s.last_success)} (${ago(s.lag_seconds)})` : "never"],
      ["Last run", s.last_run ? `${s.last_run.mode}, ${s.last_run.status}, ${when(s.last_run.started)}` : "none"],
      ["Next scheduled run", s.next_run ? `${s.next_run.mode} at ${when(s.next_run.at)}` : "not scheduled"],
      ["Users", `${store.users} (${store.active_users} active)`],
      ["Groups", store.groups],
      ["Store", store.backend],
    ];
    const dl = $("status");
    dl.replaceChildren();
    for (const [k, v] of facts) {
      const wrap = el("div");
      wrap.append(el("dt", k), el("dd", v));
      dl.append(wrap);
    }
  }

  // ---- runs --------------------------------------------------------------------------------
  function statusPill(status) {
    return el("span", status, `pill status-${String(status).replace(/[^a-z]/g, "")}`);
  }

  function runRow(run, extra) {
    const c = run.counts || {};
    const tr = el("tr");
    tr.dataset.runId = run.id;
    tr.tabIndex = 0;
    const problems = Array.isArray(run.problems) ? run.problems.length : (c.problems ?? "");
    const mode = run.dry_run ? `${run.mode} (dry run)` : run.mode;
    const removed = c.read === undefined ? "" : (c.deactivated ?? 0) + (c.deleted ?? 0);
    const cells = [when(run.started), mode, run.trigger || "api", null, c.read ?? "",
      c.created ?? "", c.updated ?? "", removed, c.problems ?? problems, took(run)];
    cells.forEach((value, i) => {
      const td = el("td", i === 3 ? null : value);
      if (i === 3) td.append(statusPill(run.status));
      tr.append(td);
    });
    if (extra) tr.classList.add(extra);
    tr.addEventListener("click", () => showRun(run.id));
    tr.addEventListener("keydown", (e) => { if (e.key === "Enter") showRun(run.id); });
    return tr;
  }

  function renderRuns(runs) {
    const body = $("runs").tBodies[0];
    body.replaceChildren();
    const listed = new Set(runs.map((r) => r.id));
    // Runs started here that the history does not hold (yet, or ever: a dry run writes none).
    for (const [id, p] of pending) {
      if (listed.has(id)) continue;
      const shown = p.report || { id, mode: p.mode, dry_run: p.dry_run, status: "running",
        started: p.started, trigger: "api", counts: {} };
      body.append(runRow({ ...shown, id, started: shown.started || p.started,
        dry_run: p.dry_run }, "fresh"));
    }
    for (const run of runs) body.append(runRow(run, pending.has(run.id) ? "fresh" : null));
    $("runs-empty").hidden = body.rows.length > 0;
  }

  async function showRun(id) {
    const box = $("run-detail");
    let run;
    try { run = await api("GET", `/admin/runs/${encodeURIComponent(id)}`); }
    catch (err) { box.replaceChildren(el("p", err.message, "error")); box.hidden = false; return; }
    box.replaceChildren();
    const head = el("div", null, "card-head");
    head.append(el("h3", `Run ${run.id}`));
    const close = el("button", "Close", "link");
    close.type = "button";
    close.addEventListener("click", () => { box.hidden = true; });
    head.append(close);
    box.append(head);
    if (run.detail) box.append(el("p", run.detail, run.status === "failed" ? "error" : "muted"));
    if (run.status === "guarded") {
      const confirm = el("button", "Confirm removals (full run allowed to remove)", "danger");
      confirm.type = "button";
      confirm.addEventListener("click", async () => {
        confirm.disabled = true;
        try {
          const accepted = await api("POST", `/admin/runs/${encodeURIComponent(run.id)}/confirm`);
          track(accepted.id, { mode: "full", dry_run: false });
        } catch (err) { message(err.message, true); }
      });
      box.append(confirm);
    }
    const counts = run.counts || {};
    const dl = el("dl", null, "facts");
    for (const [k, v] of Object.entries(counts)) {
      const wrap = el("div");
      wrap.append(el("dt", k), el("dd", v));
      dl.append(wrap);
    }
    box.append(dl);
    listSection(box, "Problems", run.problems, (p) => `${p.dn}: ${p.reason}`);
    listSection(box, "Changes (dry run diff)", run.diff,
      (d) => `${d.action} ${d.type} ${d.name || ""} ${d.dn ? `(${d.dn})` : ""}`);
    box.hidden = false;
  }

  function listSection(box, title, items, line) {
    if (!Array.isArray(items) || items.length === 0) return;
    box.append(el("h4", `${title} (${items.length})`));
    const ul = el("ul", null, "list");
    for (const item of items.slice(0, 200)) ul.append(el("li", line(item)));
    if (items.length > 200) ul.append(el("li", `... and ${items.length - 200} more`, "muted"));
    box.append(ul);
  }

  // ---- actions -----------------------------------------------------------------------------
  function message(text, isError) {
    const p = $("action-message");
    p.textContent = text;
    p.className = isError ? "error" : "muted";
  }

  function setBusy(busy) {
    for (const b of document.querySelectorAll("[data-mode]")) b.disabled = busy;
  }

  async function startRun(event) {
    const button = event.currentTarget;
    const mode = button.dataset.mode;
    const dryRun = button.dataset.dry === "true";
    setBusy(true);
    try {
      const accepted = await api("POST", "/admin/sync", { mode, dry_run: dryRun });
      track(accepted.id, { mode, dry_run: dryRun });
      message(`Started ${dryRun ? "a dry run" : `a ${mode} run`}: ${accepted.id}`);
    } catch (err) {
      message(err.status === 409 ? "A sync is already running; try again when it ends." : err.message, true);
      setBusy(false);
    }
  }

  function track(id, info) {
    pending.set(id, { ...info, started: new Date().toISOString(), report: null });
    refreshRuns();
    poll(id);
  }

  async function poll(id) {
    const p = pending.get(id);
    if (!p || !token()) return;
    try {
      const run = await api("GET", `/admin/runs/${encodeURIComponent(id)}`);
      if (run.status !== "running") {
        p.report = run;
        const label = p.dry_run ? "Dry run" : `${p.mode} run`;
        const changes = Array.isArray(run.diff) ? `, ${run.diff.length} changes` : "";
        message(`${label} ${run.status}${changes}.`, run.status === "failed");
        setBusy(false);
        await refreshAll();
        return;
      }
    } catch (err) {
      if (err.status === 401) return;
    }
    setTimeout(() => poll(id), RUN_POLL_MS);
  }

  // ---- quality (optional endpoint) ---------------------------------------------------------
  function renderValue(value) {
    if (Array.isArray(value)) {
      if (value.length && typeof value[0] === "object" && value[0] !== null) {
        const keys = Object.keys(value[0]);
        const table = el("table");
        const head = el("tr");
        keys.forEach((k) => head.append(el("th", k)));
        const thead = el("thead");
        thead.append(head);
        table.append(thead);
        const body = el("tbody");
        for (const row of value.slice(0, 100)) {
          const tr = el("tr");
          keys.forEach((k) => tr.append(el("td", typeof row[k] === "object" ? JSON.stringify(row[k]) : row[k])));
          body.append(tr);
        }
        table.append(body);
        return table;
      }
      return el("span", value.join(", "));
    }
    if (value !== null && typeof value === "object") {
      const dl = el("dl", null, "facts");
      for (const [k, v] of Object.entries(value)) {
        const wrap = el("div");
        const dd = el("dd");
        dd.append(renderValue(v));
        wrap.append(el("dt", k), dd);
        dl.append(wrap);
      }
      return dl;
    }
    return el("span", value);
  }

  function pct(share) {
    return typeof share === "number" ? `${Math.round(share * 1000) / 10}%` : "";
  }

  function table(headers, rows) {
    const t = el("table");
    const thead = el("thead");
    const head = el("tr");
    headers.forEach((h) => head.append(el("th", h)));
    thead.append(head);
    const body = el("tbody");
    for (const row of rows) {
      const tr = el("tr");
      row.forEach((v) => tr.append(el("td", v)));
      body.append(tr);
    }
    t.append(thead, body);
    return t;
  }

  function facts(pairs) {
    const dl = el("dl", null, "facts");
    for (const [k, v] of pairs) {
      const wrap = el("div");
      wrap.append(el("dt", k), el("dd", v));
      dl.append(wrap);
    }
    return dl;
  }

  // The report of GET /admin/quality (syncsvc.profiles.quality): headline, fields, departments,
  // issues, lowest scores. Another shape falls back to a generic rendering.
  function renderQuality(r) {
    if (!r || typeof r !== "object" || !r.users || !r.fields) return [renderValue(r)];
    const out = [facts([
      ["Score (active users)", `${r.score} / 100`],
      ["Users", `${r.users.total} (${r.users.active} active, ${r.users.inactive} inactive)`],
      ["Generated", when(r.generated)],
    ])];
    const issues = Object.entries(r.issues || {});
    if (issues.length) {
      out.push(el("h3", "Issues"));
      out.push(table(["Issue", "Count", "Examples"], issues.map(([name, issue]) => [
        name, issue.count,
        (issue.sample || []).slice(0, 3).map((x) => x.userName || x.email || x.dn || "").join(", "),
      ])));
    }
    out.push(el("h3", "Completeness by field"));
    out.push(table(["Field", "Users", "Share"],
      Object.entries(r.fields).map(([name, f]) => [name, f.count, pct(f.share)])));
    if (Array.isArray(r.departments) && r.departments.length) {
      out.push(el("h3", "Departments"));
      out.push(table(["Department", "Users", "Score"],
        r.departments.map((d) => [d.department || "(none)", d.users, d.score])));
    }
    if (Array.isArray(r.lowestScores) && r.lowestScores.length) {
      out.push(el("h3", "Lowest scores"));
      out.push(table(["User", "Department", "Score", "Missing"],
        r.lowestScores.slice(0, 10).map((u) => [u.userName, u.department || "", u.score,
          (u.missing || []).join(", ")])));
    }
    return out;
  }

  async function refreshQuality() {
    const section = $("quality");
    try {
      const report = await api("GET", "/admin/quality");
      $("quality-body").replaceChildren(...renderQuality(report));
      section.hidden = false;
    } catch (err) {
      section.hidden = true;     // not there (404) or failing: the page works without it
      if (!(err instanceof ApiError)) console.error(err);   // a bug here, not an absent report
    }
  }

  // ---- push targets (GET /admin/targets; hidden when none is configured) --------------------
  function targetState(t) {
    if (!t.enabled) return ["disabled", "pill"];
    if (t.quarantined) return ["quarantined", "pill status-failed"];
    if (t.consecutive_failures) return ["failing", "pill status-guarded"];
    return ["ok", "pill status-success"];
  }

  function targetButton(label, title, action, cls) {
    const b = el("button", label, cls || "link");
    b.type = "button";
    b.title = title;
    b.addEventListener("click", async () => {
      b.disabled = true;
      try { await action(); } catch (err) { targetMessage(err.message, true); }
      finally { b.disabled = false; await refreshTargets(); }
    });
    return b;
  }

  function targetMessage(text, isError) {
    const p = $("targets-message");
    p.textContent = text;
    p.className = isError ? "error" : "muted";
  }

  function targetRow(t, running) {
    const tr = el("tr");
    const [label, cls] = targetState(t);
    const state = el("td");
    state.append(el("span", label, cls));
    if (t.quarantined && t.quarantine_reason) state.title = t.quarantine_reason;
    else if (t.last_error) state.title = t.last_error;
    const name = el("td", t.name);
    name.title = t.url;
    const actions = el("td");
    const path = `/admin/targets/${encodeURIComponent(t.name)}`;
    if (running && t.enabled && !t.quarantined) {
      actions.append(targetButton("Push now", "Drain this target's queue now", async () => {
        const r = await api("POST", `${path}/push`);
        targetMessage(`${t.name}: pushed ${r.pushed}, removed ${r.removed}, failed ${r.failed}` +
          (r.error ? ` (${r.error})` : "") + (r.held ? "; removals held by the guard" : ""),
        Boolean(r.error));
      }));
      actions.append(targetButton("Check drift", "Reconcile as a dry run: show the diff", async () => {
        const r = await api("POST", `${path}/reconcile?dry_run=true`);
        targetMessage(`${t.name} drift: ${r.create.length} to create, ${r.update.length} to ` +
          `update, ${r.remove.length} to remove, ${r.link.length} to link`);
      }));
    }
    if (t.quarantined) {
      actions.append(targetButton("Resume", "Lift the quarantine", async () => {
        await api("POST", `${path}/resume`);
        targetMessage(`${t.name} resumed.`);
      }, "danger"));
    }
    const cells = [name, state, el("td", t.queue_depth), el("td", t.initial_done ? "done" : "pending"),
      el("td", when(t.last_success)), el("td", t.consecutive_failures),
      el("td", t.failed_resources), actions];
    tr.append(...cells);
    return tr;
  }

  async function refreshTargets() {
    const section = $("targets");
    try {
      const data = await api("GET", "/admin/targets");
      const targets = data.targets || [];
      $("targets-table").tBodies[0].replaceChildren(
        ...targets.map((t) => targetRow(t, data.running)));
      section.hidden = targets.length === 0;
    } catch (err) {
      section.hidden = true;     // an older server without push: the page works without it
      if (!(err instanceof ApiError)) console.error(err);
    }
  }

  // ---- refresh loop ------------------------------------------------------------------------
  async function refreshRuns() {
    const data = await api("GET", "/admin/runs?limit=20");
    renderRuns(data.runs || []);
  }

  async function refreshAll() {
    clearTimeout(idleTimer);
    if (!token()) return;
    try {
      const status = await api("GET", "/admin/status");
      renderStatus(status);
      await refreshRuns();
      await refreshQuality();
      await refreshTargets();
    } catch (err) {
      if (err.status !== 401) message(`Could not refresh: ${err.message}`, true);
    }
    if (token()) idleTimer = setTimeout(refreshAll, IDLE_REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("sign-in-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", () => signOut());
    $("refresh").addEventListener("click", refreshAll);
    for (const b of document.querySelectorAll("[data-mode]")) b.addEventListener("click", startRun);
    if (token()) {
      showSignedIn(true);
      refreshAll();
    } else {
      showSignedIn(false);
    }
  });
})();
