import Foundation
import HTTPTypes
import NIOCore

/// `GET /`: the dashboard — one page of plain HTML and script, nothing fetched from outside.
/// It logs in through the API (or takes an API token from `#token=` in its address, which
/// never reaches the server's logs), then shows recorded runs with their equity charts (the
/// report's SVG), strategies, and jobs with their progress live over Server-Sent Events.
/// Runners with their status and account, and a live signal feed over Server-Sent Events.
enum DashboardRoutes {
  static var routes: [Route] {
    [
      Route("GET", "/", "dashboard", scope: nil, rate: .unlimited) { _, _ in
        var headers = HTTPFields()
        headers[.contentSecurityPolicy] =
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'"
        headers[.init("X-Content-Type-Options")!] = "nosniff"
        headers[.cacheControl] = "no-store"
        return .raw(status: 200, contentType: "text/html; charset=utf-8", body: ByteBuffer(string: page), headers: headers)
      }
    ]
  }

  static let page = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>qtool</title>
    <style>
    body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1f2937; background: #f8fafc; }
    header { background: #111827; color: #f9fafb; padding: 10px 20px; display: flex; justify-content: space-between; align-items: center; }
    header h1 { font-size: 18px; margin: 0; }
    main { padding: 16px 20px; display: grid; gap: 16px; grid-template-columns: 1fr 1fr; }
    section { background: #fff; border: 1px solid #e5e7eb; border-radius: 6px; padding: 12px 16px; }
    section.wide { grid-column: 1 / 3; }
    h2 { font-size: 15px; margin: 0 0 8px; }
    table { border-collapse: collapse; width: 100%; }
    th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid #f1f5f9; font-variant-numeric: tabular-nums; }
    tr.run { cursor: pointer; } tr.run:hover, tr.selected { background: #eff6ff; }
    .bar { background: #e5e7eb; border-radius: 3px; height: 8px; width: 120px; display: inline-block; vertical-align: middle; }
    .bar span { display: block; height: 8px; background: #2563eb; border-radius: 3px; }
    .status-completed { color: #15803d; } .status-failed, .status-interrupted { color: #b91c1c; } .status-running { color: #2563eb; }
    #login { max-width: 320px; margin: 80px auto; }
    #login input { display: block; width: 100%; margin: 6px 0 10px; padding: 6px; box-sizing: border-box; }
    .error { color: #b91c1c; }
    button { padding: 6px 12px; }
    .muted { color: #6b7280; }
    </style>
    </head>
    <body>
    <header><h1>qtool</h1><span id="who" class="muted"></span></header>
    <div id="login" hidden>
      <section>
        <h2>Log in</h2>
        <form id="login-form">
          <label>User <input id="username" autocomplete="username" required></label>
          <label>Password <input id="password" type="password" autocomplete="current-password" required></label>
          <button type="submit">Log in</button>
          <p id="login-error" class="error"></p>
        </form>
      </section>
    </div>
    <main id="app" hidden>
      <section class="wide"><h2>Runs</h2>
        <table id="runs"><thead><tr><th>Run</th><th>Strategy</th><th>Created</th><th>Return</th><th>Sharpe</th><th>Max DD</th><th>Trades</th></tr></thead><tbody></tbody></table>
        <div id="chart" aria-live="polite"></div>
      </section>
      <section><h2>Strategies</h2>
        <table id="strategies"><thead><tr><th>Name</th><th>Type</th><th>Status</th><th>Versions</th></tr></thead><tbody></tbody></table>
      </section>
      <section><h2>Jobs <span id="live" class="muted"></span></h2>
        <table id="jobs"><thead><tr><th>Job</th><th>Kind</th><th>Status</th><th>Progress</th></tr></thead><tbody></tbody></table>
      </section>
      <section><h2>Runners</h2>
        <table id="runners"><thead><tr><th>Strategy</th><th>Status</th><th>Last bar</th><th>Position</th><th>Equity</th><th>Signals 24h</th></tr></thead><tbody></tbody></table>
      </section>
      <section><h2>Signals <span id="signals-live" class="muted"></span></h2>
        <table id="signals"><thead><tr><th>Bar</th><th>Strategy</th><th>Symbol</th><th>Type</th><th>Reason</th><th>Strength</th><th>Price</th></tr></thead><tbody></tbody></table>
      </section>
    </main>
    <script>
    "use strict";
    const api = "/api/v1";
    let token = null;
    const fromFragment = new URLSearchParams(location.hash.slice(1)).get("token");
    if (fromFragment) { token = fromFragment; history.replaceState(null, "", location.pathname); }
    else { token = sessionStorage.getItem("qtool.token"); }

    function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }
    function pct(v) { return v === undefined || v === null ? "n/a" : (v * 100).toFixed(2) + "%"; }
    function num(v) { return v === undefined || v === null ? "n/a" : v.toFixed(2); }

    async function call(path, options) {
      const response = await fetch(api + path, Object.assign({ headers: { "Authorization": "Bearer " + token } }, options || {}));
      if (response.status === 401) { showLogin(); throw new Error("unauthenticated"); }
      return response;
    }
    async function json(path) {
      const body = await (await call(path)).json();
      if (!body.success) throw new Error(body.error.message);
      return body.data;
    }

    function showLogin() { document.getElementById("app").hidden = true; document.getElementById("login").hidden = false; }
    document.getElementById("login-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const response = await fetch(api + "/auth/login", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username: document.getElementById("username").value, password: document.getElementById("password").value }) });
      const body = await response.json();
      if (!body.success) { document.getElementById("login-error").textContent = body.error.message; return; }
      token = body.data.access_token;
      sessionStorage.setItem("qtool.token", token);
      start();
    });

    async function loadRuns() {
      const page = await json("/backtests?size=20");
      const body = document.querySelector("#runs tbody");
      body.replaceChildren();
      for (const run of page.items) {
        const row = el("tr", undefined, "run");
        row.dataset.run = run.id;
        for (const text of [run.id, run.strategy, run.created_at, pct(run.metrics.total_return), num(run.metrics.sharpe), pct(run.metrics.max_drawdown),
                            run.metrics.trades === undefined ? "-" : String(run.metrics.trades)]) row.append(el("td", text));
        row.addEventListener("click", () => showChart(run.id, row));
        body.append(row);
      }
      if (page.items.length > 0) showChart(page.items[0].id, body.firstChild);
    }
    async function showChart(id, row) {
      document.querySelectorAll("#runs tr.selected").forEach((r) => r.classList.remove("selected"));
      row.classList.add("selected");
      const response = await call("/backtests/" + encodeURIComponent(id) + "/chart");
      const svg = new DOMParser().parseFromString(await response.text(), "image/svg+xml").documentElement;
      const chart = document.getElementById("chart");
      chart.replaceChildren(el("h2", "Equity of " + id), document.importNode(svg, true));
    }
    async function loadStrategies() {
      const page = await json("/strategies?size=100");
      const body = document.querySelector("#strategies tbody");
      body.replaceChildren();
      for (const s of page.items) {
        const row = el("tr");
        for (const text of [s.name, s.type, s.status, String(s.versions)]) row.append(el("td", text));
        body.append(row);
      }
    }
    const jobRows = new Map();
    function showJob(job) {
      let row = jobRows.get(job.id);
      if (!row) {
        row = el("tr");
        row.dataset.job = job.id;
        for (let i = 0; i < 4; i++) row.append(el("td"));
        jobRows.set(job.id, row);
        document.querySelector("#jobs tbody").prepend(row);
      }
      const cells = row.children;
      cells[0].textContent = job.id; cells[1].textContent = job.kind;
      cells[2].textContent = job.status; cells[2].className = "status-" + job.status;
      const p = job.progress;
      cells[3].replaceChildren();
      if (p) {
        const bar = el("span", undefined, "bar"), fill = el("span");
        const share = p.total ? Math.min(1, p.done / p.total) : (job.status === "completed" ? 1 : 0);
        fill.style.width = Math.round(share * 100) + "%";
        bar.append(fill);
        cells[3].append(bar, el("span", " " + p.phase + " " + p.done + (p.total ? "/" + p.total : "") + " " + p.unit, "muted"));
      }
      if (job.status === "completed" && job.kind === "backtest") loadRuns().catch(() => {});
    }
    async function loadJobs() {
      const page = await json("/jobs?size=20");
      for (const job of page.items.reverse()) showJob(job);
    }
    function follow() {
      // EventSource cannot send headers: the token goes in the query (the server redacts it from its log).
      const source = new EventSource(api + "/stream/jobs?access_token=" + encodeURIComponent(token));
      source.addEventListener("job", (event) => { showJob(JSON.parse(event.data)); });
      source.onopen = () => { document.getElementById("live").textContent = "● live"; };
      source.onerror = () => { document.getElementById("live").textContent = "reconnecting…"; };
    }
    async function loadRunners() {
      const page = await json("/runners?size=100");
      const body = document.querySelector("#runners tbody");
      body.replaceChildren();
      for (const r of page.items) {
        const a = r.account, row = el("tr");
        const position = !a ? "-" : a.positions.length === 0 ? "flat" : a.positions.map((p) => p.side + " " + p.size + " " + p.symbol).join(", ");
        for (const text of [r.strategy, r.status, r.last_bar || "-", position, a ? num(a.equity) : "-", String(r.signals_24h)]) row.append(el("td", text));
        row.children[1].className = "status-" + r.status;
        body.append(row);
      }
    }
    function showSignal(s) {
      const row = el("tr");
      row.dataset.signal = s.id;
      for (const text of [s.bar_time, s.strategy, s.symbol + " " + s.timeframe, s.type, s.reason, s.strength_raw + " (" + s.strength_level + ")",
                          s.price === null || s.price === undefined ? "-" : String(s.price)]) row.append(el("td", text));
      const body = document.querySelector("#signals tbody");
      body.prepend(row);
      while (body.children.length > 50) body.lastChild.remove();
    }
    function followSignals() {
      // The last 20 signals, then each one as it is stored; the browser resumes after the last
      // one it saw (Last-Event-ID) when the connection drops.
      const source = new EventSource(api + "/stream/signals?tail=20&access_token=" + encodeURIComponent(token));
      let refresh = null;
      source.addEventListener("signal", (event) => {
        showSignal(JSON.parse(event.data));
        if (!refresh) refresh = setTimeout(() => { refresh = null; loadRunners().catch(() => {}); }, 1000);
      });
      source.onopen = () => { document.getElementById("signals-live").textContent = "● live"; };
      source.onerror = () => { document.getElementById("signals-live").textContent = "reconnecting…"; };
    }
    async function start() {
      if (!token) { showLogin(); return; }
      try {
        const me = await json("/auth/me");
        document.getElementById("who").textContent = me.name + (me.role ? " (" + me.role + ")" : "");
      } catch (e) { return; }
      document.getElementById("login").hidden = true;
      document.getElementById("app").hidden = false;
      await Promise.all([loadRuns(), loadStrategies(), loadJobs(), loadRunners()].map((p) => p.catch((e) => console.error(e))));
      follow();
      followSignals();
    }
    start();
    </script>
    </body>
    </html>
    """#
}
