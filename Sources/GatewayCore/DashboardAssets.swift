/// The dashboard's script and style sheet, served from /admin/queues/assets/ so that the
/// Content-Security-Policy can forbid inline code and every other origin. No build step.
enum DashboardAssets {
    static let js = #"""
    // OOPS queue dashboard: confirms and sends action forms, keeps counts and job states fresh.
    (function () {
      'use strict';

      function fill(template, form) {
        return template.replace(/\{(\w+)\}/g, function (_, name) {
          var el = form.elements.namedItem(name);
          if (!el) return '';
          if (el.tagName === 'SELECT') return el.options[el.selectedIndex].text;
          return el.value;
        });
      }

      // Actions are ordinary POST forms (the server redirects back afterwards); this only asks
      // first, naming what the form's fields say will happen.
      document.addEventListener('submit', function (ev) {
        var form = ev.target;
        if (!(form instanceof HTMLFormElement)) return;
        var question = form.getAttribute('data-confirm');
        if (question && !window.confirm(fill(question, form))) { ev.preventDefault(); return; }
        // A second click while the first request runs would repeat the action.
        setTimeout(function () { form.querySelectorAll('button').forEach(function (b) { b.disabled = true; }); }, 0);
      });

      // Coming back through the history must not leave the buttons dead.
      window.addEventListener('pageshow', function () {
        document.querySelectorAll('form button:disabled').forEach(function (b) { b.disabled = false; });
      });

      function toLogin() {
        window.location.assign('/admin/login?next=' + encodeURIComponent(window.location.pathname + window.location.search));
      }

      function getJSON(url) {
        return fetch(url, { credentials: 'same-origin', headers: { 'Accept': 'application/json' } }).then(function (res) {
          if (res.status === 401) { toLogin(); return null; }
          return res.ok ? res.json() : null;
        });
      }

      function setStatus(ok) {
        var el = document.querySelector('[data-updated]');
        if (!el) return;
        el.textContent = ok ? 'updated ' + new Date().toLocaleTimeString() : 'refresh failed, retrying';
        el.classList.toggle('stale', !ok);
      }

      function refreshCounts() {
        getJSON('/admin/queues/api/overview').then(function (data) {
          if (!data) { setStatus(false); return; }
          data.queues.forEach(function (q) {
            Object.keys(q.counts).forEach(function (state) {
              document.querySelectorAll('[data-count="' + q.name + ':' + state + '"]').forEach(function (el) {
                el.textContent = String(q.counts[state]);
              });
            });
            document.querySelectorAll('[data-paused="' + q.name + '"]').forEach(function (el) { el.hidden = !q.paused; });
            document.querySelectorAll('[data-running="' + q.name + '"]').forEach(function (el) { el.hidden = q.paused; });
          });
          setStatus(true);
        }).catch(function () { setStatus(false); });
      }

      function refreshJob(url) {
        var stateEl = document.querySelector('[data-job-state]');
        getJSON(url).then(function (job) {
          if (!job || !stateEl) return;
          var before = stateEl.getAttribute('data-job-state');
          var attempts = document.querySelector('[data-job-attempts]');
          if (attempts) attempts.textContent = String(job.attemptsMade);
          if (job.state && job.state !== before) {
            // The details (reason, trace, return value) belong to the new state: show them all.
            window.location.reload();
          }
        }).catch(function () {});
      }

      var body = document.body;
      var every = parseInt(body.getAttribute('data-poll-ms') || '3000', 10);
      if (body.hasAttribute('data-poll-counts')) { refreshCounts(); setInterval(refreshCounts, every); }
      var jobURL = body.getAttribute('data-poll-job');
      if (jobURL) setInterval(function () { refreshJob(jobURL); }, every);
    })();
    """#

    static let css = #"""
    :root { --fg: #1d2433; --muted: #6b7385; --line: #e3e6ee; --bg: #f6f7fb; --card: #fff; --accent: #2f5fd0;
            --red: #c0392b; --green: #1e8a4c; --amber: #b7791f; --violet: #6b46c1; --grey: #6b7385; }
    * { box-sizing: border-box; }
    body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; color: var(--fg); background: var(--bg); }
    a { color: var(--accent); text-decoration: none; }
    a:hover { text-decoration: underline; }
    header.top { display: flex; align-items: center; gap: 16px; padding: 10px 24px; background: #1d2433; color: #fff; }
    header.top .brand { color: #fff; font-weight: 600; font-size: 16px; margin-right: auto; }
    header.top .who { color: #c9cfdd; }
    header.top button.link { color: #c9cfdd; background: none; border: 1px solid #4a5368; border-radius: 4px; padding: 3px 10px; cursor: pointer; }
    main { max-width: 1320px; margin: 0 auto; padding: 20px 24px 48px; }
    h1 { font-size: 22px; margin: 8px 0 16px; display: flex; align-items: center; gap: 10px; flex-wrap: wrap; }
    h2 { font-size: 17px; margin: 0; }
    h3 { font-size: 14px; margin: 22px 0 8px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
    .muted { color: var(--muted); }
    .crumbs { color: var(--muted); margin-bottom: 6px; }
    .crumbs .sep { margin: 0 4px; }
    .flash { background: #e8f5ec; border: 1px solid #b9dfc6; padding: 8px 12px; border-radius: 6px; }
    .flash.error { background: #fdecea; border-color: #f3c1bb; }
    .alert { background: #fdecea; border: 1px solid #e0796b; color: #8a1c10; padding: 10px 14px; border-radius: 6px; margin: 8px 0 16px; }
    .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 16px 18px; margin-bottom: 18px; }
    .card > header { display: flex; align-items: center; gap: 10px; margin-bottom: 12px; flex-wrap: wrap; }
    .card > header .spacer { margin-left: auto; }
    .counts { display: grid; grid-template-columns: repeat(7, minmax(90px, 1fr)); gap: 8px; }
    .counts a { display: block; border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; color: var(--fg); background: #fbfcfe; }
    .counts a:hover { border-color: var(--accent); text-decoration: none; }
    .counts a.current { border-color: var(--accent); box-shadow: inset 0 -3px 0 var(--accent); }
    .counts .n { display: block; font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
    .counts .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
    .s-failed .n { color: var(--red); } .s-completed .n { color: var(--green); } .s-active .n { color: var(--accent); }
    .s-delayed .n { color: var(--amber); } .s-prioritized .n { color: var(--violet); }
    .badge { display: inline-block; font-size: 12px; font-weight: 600; padding: 2px 8px; border-radius: 10px; background: #eceff5; color: var(--grey); text-transform: uppercase; letter-spacing: .03em; }
    .badge.failed { background: #fdecea; color: var(--red); } .badge.completed { background: #e8f5ec; color: var(--green); }
    .badge.active { background: #e8eefc; color: var(--accent); } .badge.delayed, .badge.paused { background: #fdf3e1; color: var(--amber); }
    .badge.prioritized { background: #f1ebfb; color: var(--violet); }
    .actions { display: flex; gap: 8px; flex-wrap: wrap; align-items: center; margin-top: 12px; }
    form.inline { display: inline-flex; gap: 6px; align-items: center; margin: 0; }
    button { font: inherit; border-radius: 5px; padding: 5px 12px; cursor: pointer; border: 1px solid var(--line); background: #fff; }
    button.primary { border-color: var(--accent); color: var(--accent); }
    button.danger { border-color: var(--red); color: var(--red); }
    button:hover { filter: brightness(0.95); }
    button:disabled { opacity: .5; cursor: wait; }
    input, select { font: inherit; padding: 4px 6px; border: 1px solid var(--line); border-radius: 5px; background: #fff; }
    input[type=number] { width: 70px; }
    table.jobs { width: 100%; border-collapse: collapse; background: var(--card); }
    table.jobs th, table.jobs td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
    table.jobs th { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
    table.jobs td.reason { min-width: 240px; max-width: 420px; word-break: break-word; }
    table.jobs td:nth-child(2) { white-space: nowrap; }
    .table-wrap { overflow-x: auto; }
    .pager { display: flex; gap: 16px; align-items: center; justify-content: center; margin-top: 14px; }
    dl.facts { display: grid; grid-template-columns: 180px 1fr; gap: 6px 16px; margin: 0; }
    dl.facts dt { color: var(--muted); }
    dl.facts dd { margin: 0; }
    pre { background: #f3f5f9; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; overflow: auto; max-height: 420px; margin: 0; font: 12.5px/1.45 ui-monospace, "DejaVu Sans Mono", monospace; white-space: pre-wrap; word-break: break-word; }
    pre.error { background: #fdf3f2; border-color: #f3c1bb; }
    ol.logs { margin: 0; padding-left: 22px; font: 12.5px/1.5 ui-monospace, "DejaVu Sans Mono", monospace; }
    .grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
    .login { max-width: 360px; margin: 60px auto; }
    .login label { display: block; margin: 12px 0 4px; color: var(--muted); }
    .login input { width: 100%; padding: 8px 10px; }
    .login button { width: 100%; margin-top: 18px; padding: 8px; }
    [data-updated].stale { color: var(--red); }
    [hidden] { display: none !important; }
    @media (max-width: 900px) { .counts { grid-template-columns: repeat(4, 1fr); } .grid2 { grid-template-columns: 1fr; } }
    """#
}
