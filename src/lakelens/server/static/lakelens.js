/* lakelens dashboard behaviour: overview auto-refresh, lineage selection, trace details, live
   log tail. Plain JS, no dependencies; every page works without it. Text from the server is
   only ever set with textContent, never parsed as HTML (except whole pages we rendered). */
(function () {
  "use strict";

  function byId(id) { return document.getElementById(id); }

  /* -- overview: refresh the main content in place (keeps scroll position and filters) -- */
  function setupRefresh() {
    var main = byId("content");
    if (!main || !main.hasAttribute("data-refresh")) return;
    var params = new URLSearchParams(window.location.search);
    var stored = null;
    try { stored = window.localStorage.getItem("lakelens.refresh"); } catch (e) { stored = null; }
    var seconds = Number(main.getAttribute("data-refresh"));
    if (!params.has("refresh") && stored !== null && !isNaN(Number(stored))) seconds = Number(stored);
    var timer = null;
    var busy = false;

    function syncSelect() {
      var select = byId("refresh-select");
      if (select) select.value = String(seconds);
    }
    function schedule() {
      window.clearTimeout(timer);
      if (seconds > 0) timer = window.setTimeout(refresh, seconds * 1000);
    }
    function refresh() {
      if (busy) return;
      if (document.hidden) { schedule(); return; }
      busy = true;
      window.fetch(window.location.href, { credentials: "same-origin", headers: { "X-Lakelens-Refresh": "1" } })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.text();
        })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById("content");
          if (!fresh) throw new Error("no content");
          var active = document.activeElement && document.activeElement.id;
          main.replaceChildren.apply(main, Array.prototype.slice.call(fresh.childNodes).map(function (n) {
            return document.importNode(n, true);
          }));
          syncSelect();
          if (active && byId(active)) byId(active).focus({ preventScroll: true });
        })
        .catch(function () {
          var updated = byId("updated");
          if (updated) { updated.textContent = "refresh failed — retrying"; updated.classList.add("failed"); }
        })
        .then(function () { busy = false; schedule(); });
    }
    document.addEventListener("change", function (event) {
      if (!event.target || event.target.id !== "refresh-select") return;
      seconds = Number(event.target.value);
      try { window.localStorage.setItem("lakelens.refresh", String(seconds)); } catch (e) { /* private mode */ }
      var url = new URL(window.location.href);
      url.searchParams.set("refresh", String(seconds));
      window.history.replaceState(null, "", url.toString());
      schedule();
    });
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && seconds > 0) refresh();
    });
    syncSelect();
    schedule();
  }

  /* -- lineage: select a node to highlight everything downstream of it -- */
  function setupDag(svg) {
    var edges = Array.prototype.slice.call(svg.querySelectorAll(".edge"));
    var nodes = {};
    Array.prototype.forEach.call(svg.querySelectorAll("a.node"), function (node) {
      nodes[node.getAttribute("data-id")] = node;
    });
    var down = {};
    edges.forEach(function (edge) {
      var from = edge.getAttribute("data-from");
      (down[from] = down[from] || []).push(edge);
    });
    var panel = byId("selection");
    var selected = null;

    // A column's path drawn by the server gives way to the asset selection the user makes.
    function dropColumnPath() {
      svg.classList.remove("column-path");
      Object.keys(nodes).forEach(function (id) { nodes[id].classList.remove("feeds", "maybe"); });
      edges.forEach(function (edge) { edge.classList.remove("maybe"); });
    }
    function clear() {
      selected = null;
      dropColumnPath();
      svg.classList.remove("has-selection");
      Object.keys(nodes).forEach(function (id) { nodes[id].classList.remove("selected", "impacted"); });
      edges.forEach(function (edge) { edge.classList.remove("hot"); });
      if (panel) panel.hidden = true;
      var fallback = byId("panel-default");
      if (fallback) fallback.hidden = false;
    }
    function select(id) {
      var seen = {}; seen[id] = true;
      var queue = [id], hot = [], count = 0;
      while (queue.length) {
        var current = queue.shift();
        (down[current] || []).forEach(function (edge) {
          hot.push(edge);
          var target = edge.getAttribute("data-to");
          if (!seen[target]) { seen[target] = true; count += 1; queue.push(target); }
        });
      }
      dropColumnPath();
      svg.classList.add("has-selection");
      Object.keys(nodes).forEach(function (key) {
        nodes[key].classList.toggle("selected", key === id);
        nodes[key].classList.toggle("impacted", key !== id && !!seen[key]);
      });
      edges.forEach(function (edge) { edge.classList.remove("hot"); });
      hot.forEach(function (edge) { edge.classList.add("hot"); });
      selected = id;
      var node = nodes[id];
      if (panel && node) {
        var name = node.getAttribute("data-name");
        byId("sel-name").textContent = name;
        byId("sel-health").textContent = node.getAttribute("data-health");
        byId("sel-count").textContent = String(count);
        byId("sel-open").setAttribute("href", node.getAttribute("href"));
        byId("sel-lineage").setAttribute("href", "/lineage/" + encodeURIComponent(name));
        panel.hidden = false;
        var fallback = byId("panel-default");
        if (fallback) fallback.hidden = true;
      }
    }
    svg.addEventListener("click", function (event) {
      var node = event.target.closest ? event.target.closest("a.node") : null;
      if (!node || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      var id = node.getAttribute("data-id");
      // The second click on a chosen node follows its link to the asset page.
      if (selected === id) return;
      event.preventDefault();
      select(id);
    });
    svg.addEventListener("focusin", function (event) {
      var node = event.target.closest ? event.target.closest("a.node") : null;
      if (node && node.matches(":focus-visible")) select(node.getAttribute("data-id"));
    });
    svg.addEventListener("keydown", function (event) {
      if (event.key === "Escape") clear();
    });
    return { select: select, nodes: nodes };
  }

  function setupLineage() {
    var dags = Array.prototype.slice.call(document.querySelectorAll("svg.dag")).map(setupDag);
    var find = byId("find-asset");
    if (!find || !dags.length) return;
    var main = dags[0];
    function go() {
      var wanted = find.value.trim();
      Object.keys(main.nodes).forEach(function (id) {
        var node = main.nodes[id];
        if (node.getAttribute("data-name") === wanted) {
          main.select(id);
          node.scrollIntoView({ block: "center", inline: "center", behavior: "smooth" });
        }
      });
    }
    find.addEventListener("change", go);
    find.addEventListener("keydown", function (event) { if (event.key === "Enter") { event.preventDefault(); go(); } });
  }

  /* -- lineage: choosing a column traces it (the form's button does the same without JS) -- */
  function setupColumnPick() {
    var select = byId("column-select");
    if (!select || select.tagName !== "SELECT" || !select.form) return;
    select.addEventListener("change", function () { select.form.submit(); });
  }

  /* -- trace: choosing a span opens its attributes -- */
  function setupWaterfall() {
    var svg = document.querySelector("svg.waterfall");
    if (!svg) return;
    function open(group) {
      var details = byId(group.getAttribute("data-span"));
      if (!details) return;
      Array.prototype.forEach.call(document.querySelectorAll(".span-detail.active, .waterfall .span.active"), function (el) {
        el.classList.remove("active");
      });
      details.open = true;
      details.classList.add("active");
      group.classList.add("active");
      details.scrollIntoView({ block: "nearest", behavior: "smooth" });
    }
    svg.addEventListener("click", function (event) {
      var group = event.target.closest ? event.target.closest("g.span") : null;
      if (group) open(group);
    });
    svg.addEventListener("keydown", function (event) {
      var group = event.target.closest ? event.target.closest("g.span") : null;
      if (group && (event.key === "Enter" || event.key === " ")) { event.preventDefault(); open(group); }
    });
  }

  /* -- logs: live tail over the SSE stream, new records on top -- */
  function cell(row, text, className) {
    var td = document.createElement("td");
    if (className) td.className = className;
    if (text !== null && text !== undefined) td.textContent = text;
    row.appendChild(td);
    return td;
  }
  function link(td, href, text) {
    var a = document.createElement("a");
    a.setAttribute("href", href);
    a.textContent = text;
    td.appendChild(a);
  }
  // Records arrive in UTC; the page says which zone to show them in (its offset now).
  function shownTime(iso, toggle) {
    var offset = Number(toggle.getAttribute("data-tz-offset") || 0);
    var label = toggle.getAttribute("data-tz-label") || "UTC";
    var at = Date.parse(String(iso || ""));
    if (isNaN(at)) return String(iso || "").replace("T", " ").slice(0, 19) + " UTC";
    return new Date(at + offset * 1000).toISOString().replace("T", " ").slice(0, 19) + " " + label;
  }
  function logRow(record, toggle) {
    var level = String(record.level || "INFO");
    var known = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"].indexOf(level) >= 0;
    var row = document.createElement("tr");
    row.className = "lvl-" + (known ? level.toLowerCase() : "info") + " fresh-row";
    row.setAttribute("data-id", String(record.id));
    cell(row, shownTime(record.time, toggle), "t");
    var lvl = cell(row, null);
    var span = document.createElement("span");
    span.className = "lvl";
    span.textContent = level;
    lvl.appendChild(span);
    var asset = cell(row, null, "a");
    if (record.asset) link(asset, "/assets/" + encodeURIComponent(record.asset), record.asset);
    var message = cell(row, record.message, "msg");
    var attributes = record.attributes || {};
    var keys = Object.keys(attributes).sort();
    if (keys.length) {
      var attrs = document.createElement("span");
      attrs.className = "attrs";
      keys.forEach(function (key) {
        var item = document.createElement("span");
        item.className = "attr";
        item.appendChild(document.createTextNode(" " + key + "="));
        var value = document.createElement("span");
        value.className = "v";
        var raw = attributes[key];
        var text = typeof raw === "string" ? raw : JSON.stringify(raw);
        if (text.length > 160) { value.setAttribute("title", text.slice(0, 4000)); text = text.slice(0, 159) + "…"; }
        value.textContent = text;
        item.appendChild(value);
        attrs.appendChild(item);
      });
      message.appendChild(attrs);
    }
    var run = cell(row, null);
    if (record.run_id) link(run, "/runs/" + encodeURIComponent(record.run_id), String(record.run_id).slice(0, 8));
    return row;
  }

  function setupLiveTail() {
    var toggle = byId("live-tail");
    var body = byId("log-rows");
    if (!toggle || !body || !window.EventSource) return;
    var status = byId("live-status");
    var count = byId("log-count");
    var source = null;
    var added = 0;
    var base = toggle.getAttribute("data-stream");
    var lastId = Number(new URL(base, window.location.href).searchParams.get("after") || 0);

    function say(text, live) {
      if (!status) return;
      status.textContent = text;
      status.classList.toggle("live", !!live);
    }
    function start() {
      var url = new URL(base, window.location.href);
      url.searchParams.set("after", String(lastId));
      source = new EventSource(url.pathname + url.search);
      say("connecting…", false);
      source.addEventListener("open", function () { say("live", true); });
      source.addEventListener("log", function (event) {
        var record = JSON.parse(event.data);
        if (record.id && record.id <= lastId) return;
        lastId = record.id || lastId;
        var empty = byId("no-logs");
        if (empty) empty.remove();
        body.insertBefore(logRow(record, toggle), body.firstChild);
        while (body.rows.length > 2000) body.deleteRow(body.rows.length - 1);
        added += 1;
        if (count) count.textContent = body.rows.length + " records (" + added + " live)";
      });
      source.addEventListener("error", function (event) {
        if (event.data) {
          try { say(JSON.parse(event.data).detail, false); } catch (e) { say("stream error", false); }
          stop();
          toggle.checked = false;
        } else {
          say("reconnecting…", false);
        }
      });
    }
    function stop() {
      if (source) { source.close(); source = null; }
      say("", false);
    }
    toggle.addEventListener("change", function () { if (toggle.checked) start(); else stop(); });
    if (toggle.checked) start();
    window.addEventListener("pagehide", stop);
  }

  /* -- footer: the zone picker also offers this browser's own zone -- */
  function setupZonePick() {
    var list = byId("tz-choices");
    if (!list) return;
    var own = null;
    try { own = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { own = null; }
    if (!own) return;
    var params = new URLSearchParams(list.getAttribute("data-keep") || "");
    params.set("tz", own);
    var href = window.location.pathname + "?" + params.toString();
    var known = Array.prototype.some.call(list.querySelectorAll("a"), function (a) {
      return new URL(a.href, window.location.href).searchParams.get("tz") === own;
    });
    if (known) return;
    var item = document.createElement("li");
    var link = document.createElement("a");
    link.setAttribute("href", href);
    link.textContent = own + " (this browser)";
    item.appendChild(link);
    list.appendChild(item);
  }

  function init() {
    setupRefresh();
    setupZonePick();
    setupLineage();
    setupColumnPick();
    setupWaterfall();
    setupLiveTail();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
