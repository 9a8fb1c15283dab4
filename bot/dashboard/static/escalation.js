// The moderators' alert queue, kept current without a reload (progressive enhancement: the
// page is complete without this file). Polls /escalation/queue.json and rebuilds the rows
// with DOM methods only: alert data goes in as text, never as HTML.
"use strict";

// A conversation's page: new messages appear as they come (the user's, the bot's, the team's).
(function () {
  var list = document.getElementById("conversation-live");
  if (!list) {
    return;
  }
  var source = list.getAttribute("data-source");
  var after = parseInt(list.getAttribute("data-after"), 10) || 0;

  function add(m) {
    var empty = list.querySelector(".empty");
    if (empty) {
      empty.remove();
    }
    var item = document.createElement("li");
    item.className = "msg " + (m.direction === "in" ? "from-user" : "from-bot") +
      (m.flags.indexOf("team") >= 0 ? " from-team" : "") + " fresh";
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    var bdi = document.createElement("bdi");
    bdi.className = "user-text";
    bdi.textContent = m.text; // text, never HTML
    bubble.appendChild(bdi);
    item.appendChild(bubble);
    var meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = m.created_at + " · " + (m.direction === "in" ? (m.intent || m.kind) : m.kind) +
      (m.flags.length ? " · " + m.flags.join(", ") : "");
    item.appendChild(meta);
    list.appendChild(item);
  }

  function poll() {
    fetch(source + "?after=" + after, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) {
          return;
        }
        data.messages.forEach(function (m) {
          add(m);
          after = Math.max(after, m.id);
        });
      })
      .catch(function () { /* try again at the next tick */ })
      .then(function () { window.setTimeout(poll, 4000); });
  }

  window.setTimeout(poll, 4000);
})();

(function () {
  var table = document.getElementById("alert-queue");
  if (!table) {
    return;
  }
  var body = table.querySelector("tbody");
  var status = document.getElementById("queue-status");
  var source = table.getAttribute("data-source");
  var seconds = parseInt(table.getAttribute("data-seconds"), 10) || 4;
  var baseTitle = document.title;
  var known = null;

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function cell(row, text, className) {
    var td = document.createElement("td");
    if (className) {
      td.className = className;
    }
    if (text !== undefined && text !== null) {
      td.textContent = text;
    }
    row.appendChild(td);
    return td;
  }

  function badge(parent, text, kind) {
    var span = document.createElement("span");
    span.className = "badge" + (kind ? " " + kind : "");
    span.textContent = text;
    parent.appendChild(span);
  }

  function actionForm(parent, alertId, action, label, secondary) {
    var form = document.createElement("form");
    form.method = "post";
    form.action = "/escalation/alerts/" + alertId + "/" + action;
    form.className = "inline";
    var token = document.createElement("input");
    token.type = "hidden";
    token.name = "csrf_token";
    token.value = csrfToken();
    form.appendChild(token);
    var button = document.createElement("button");
    button.type = "submit";
    button.textContent = label;
    if (secondary) {
      button.className = "secondary";
    }
    form.appendChild(button);
    parent.appendChild(form);
  }

  function when(iso) {
    return iso.replace("T", " ").replace(/\+00:00$/, " UTC");
  }

  function render(alerts) {
    var ids = alerts.map(function (a) { return a.id; });
    var fresh = known === null ? [] : ids.filter(function (id) { return known.indexOf(id) < 0; });
    known = ids;
    while (body.firstChild) {
      body.removeChild(body.firstChild);
    }
    if (!alerts.length) {
      var empty = document.createElement("tr");
      empty.className = "empty";
      var td = cell(empty, "No open alerts.");
      td.colSpan = 8;
      body.appendChild(empty);
    }
    alerts.forEach(function (a) {
      var row = document.createElement("tr");
      row.className = "severity-" + a.severity + (fresh.indexOf(a.id) >= 0 ? " fresh" : "");
      row.setAttribute("data-alert", String(a.id));
      var sev = cell(row);
      badge(sev, a.severity, a.severity === "crisis" ? "crisis" : a.severity === "high" ? "risk" : "");
      if (a.escalated) {
        sev.appendChild(document.createTextNode(" "));
        badge(sev, "escalated", "risk");
      }
      cell(row, a.kind.replace(/_/g, " "));
      var conv = cell(row);
      var link = document.createElement("a");
      link.href = "/escalation/" + encodeURIComponent(a.conversation);
      var code = document.createElement("code");
      code.textContent = a.short;
      link.appendChild(code);
      conv.appendChild(link);
      var level = document.createElement("span");
      level.className = "hint";
      level.textContent = " risk " + a.risk_level;
      conv.appendChild(level);
      cell(row, a.reasons.join(", "));
      cell(row, when(a.created_at), "nowrap");
      cell(row, a.handling + (a.handled_by ? " (" + a.handled_by + ")" : "") + (a.muted ? ", muted" : ""));
      cell(row, a.status + (a.acknowledged_by ? " by " + a.acknowledged_by : ""));
      var actions = cell(row, null, "nowrap");
      if (a.status === "open") {
        actionForm(actions, a.id, "acknowledge", "Acknowledge", true);
      }
      actionForm(actions, a.id, "resolve", "Resolve", false);
      body.appendChild(row);
    });
    var crises = alerts.filter(function (a) { return a.severity === "crisis"; }).length;
    status.textContent = alerts.length + " open" + (crises ? ", " + crises + " crisis" : "") +
      " · updated " + new Date().toLocaleTimeString();
    document.title = (alerts.length ? "(" + alerts.length + ") " : "") + baseTitle;
  }

  function poll() {
    fetch(source, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (data) { render(data.alerts); })
      .catch(function () {
        status.textContent = "Could not refresh the list; retrying.";
      })
      .then(function () { window.setTimeout(poll, seconds * 1000); });
  }

  window.setTimeout(poll, seconds * 1000);
})();
