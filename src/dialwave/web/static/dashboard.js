/* dialwave dashboard: live values by server-sent events, fragments loaded and refreshed, "what if"
   forms loaded in place, confirmations. Vanilla JavaScript, no dependency; the pages work without it
   (they are just not live). */
(function () {
  "use strict";

  function valueAt(data, path) {
    return path.split(".").reduce(function (o, k) { return o == null ? undefined : o[k]; }, data);
  }

  // Set every [data-field] under `root` from `data`; show the forms whose statuses include the new one.
  function apply(root, data) {
    root.querySelectorAll("[data-field]").forEach(function (el) {
      var v = valueAt(data, el.dataset.field);
      if (v === undefined) return;
      if (el.tagName === "PROGRESS") { el.value = v; return; }
      var text = (v === null || v === "") ? (el.dataset.empty !== undefined ? el.dataset.empty : "—") : String(v);
      if ("badge" in el.dataset) {
        el.className = "badge badge-" + text;
        text = text.replace(/_/g, " ");
      }
      if (el.textContent !== text) el.textContent = text;
    });
    root.querySelectorAll("[data-show-when]").forEach(function (el) {
      el.hidden = el.dataset.showWhen.split(" ").indexOf(data.status) < 0;
    });
  }

  var FINAL = ["completed", "cancelled"];

  document.querySelectorAll("[data-stream]").forEach(function (root) {
    if (!window.EventSource) return;
    var source = new EventSource(root.dataset.stream);
    source.addEventListener("campaign", function (event) {
      var data = JSON.parse(event.data);
      apply(root, data);
      refreshOnChange(document);  // the chart sits outside the live section
      if (FINAL.indexOf(data.status) >= 0) source.close();  // the server ends the stream too
    });
    source.addEventListener("campaigns", function (event) {
      var all = JSON.parse(event.data).campaigns;
      root.querySelectorAll("[data-campaign]").forEach(function (row) {
        var data = all[row.dataset.campaign];
        if (data) apply(row, data);
      });
    });
    source.addEventListener("signed-out", function () {
      source.close();
      window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
    });
  });

  function load(el, url) {
    return fetch(url, { headers: { "X-Fragment": "1" }, credentials: "same-origin" }).then(function (r) {
      if (r.redirected && r.url.indexOf("/login") >= 0) { window.location.assign(r.url); return; }
      if (r.ok) return r.text().then(function (html) { el.innerHTML = html; });
    }).catch(function () { /* keep what is shown */ });
  }

  function refresh(el) {
    var open = el.querySelector("details[open]");  // keep an open table open
    el.dataset.loadedAt = String(Date.now());
    return load(el, el.dataset.refreshUrl).then(function () {
      if (open) { var d = el.querySelector("details"); if (d) d.open = true; }
    });
  }

  // A fragment marked data-refresh-on-change (the chart) also reloads when the stream brings new
  // counts, at most once every data-refresh-min seconds (2 by default).
  function refreshOnChange(root) {
    root.querySelectorAll("[data-refresh-on-change]").forEach(function (el) {
      var least = (Number(el.dataset.refreshMin) || 2) * 1000;
      if (Date.now() - Number(el.dataset.loadedAt || 0) >= least) refresh(el);
    });
  }

  document.querySelectorAll("[data-load]").forEach(function (el) { load(el, el.dataset.load); });
  document.querySelectorAll("[data-refresh-url]").forEach(function (el) {
    var seconds = Number(el.dataset.refresh) || 10;
    el.dataset.loadedAt = String(Date.now());
    window.setInterval(function () { refresh(el); }, seconds * 1000);
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) { event.preventDefault(); return; }
    if (!form.dataset.into) return;
    event.preventDefault();
    var target = document.querySelector(form.dataset.into);
    var query = new URLSearchParams(new FormData(form)).toString();
    var button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    load(target, form.action + "?" + query).then(function () {
      var first = target.querySelector("[data-focus]");
      if (first) { first.setAttribute("tabindex", "-1"); first.focus(); }
    });
  });
})();
