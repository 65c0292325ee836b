/* supportreel review page: decisions, running order, keyboard, export.
 * Inlined into index.html by processing/review.py; served as a file by the review
 * app (reel review serve), where data.app is set and every change is saved on the
 * server instead of in this browser. Contributor text reaches the page only
 * through the JSON block and textContent, never as markup. */
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("review-data").textContent);
  var clips = data.clips; // id -> {name, duration, status, refusal}
  var app = data.app || null; // {csrf, editor} in the review app
  var saving = Promise.resolve();
  var storeKey = "supportreel-review:" + location.pathname + ":" + data.batch;
  var state = initialState();
  var lastCard = null;

  var $ = function (sel, root) { return (root || document).querySelector(sel); };
  var $$ = function (sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); };
  var cards = $$("article.card[data-id]");
  var say = function (text) { $("#status").textContent = text; };

  function initialState() {
    var applied = data.decisions; // may be null
    var base = applied ? applied.applied_at : null;
    var fresh = {
      base: base,
      editor: applied ? applied.editor : "",
      decisions: applied ? filterKnown(applied.decisions) : {},
      order: applied ? applied.order.filter(function (id) { return id in clips; }) : []
    };
    if (app) return fresh; // the server's decisions are the only copy
    try {
      var saved = JSON.parse(localStorage.getItem(storeKey) || "null");
      // A working copy made on top of the decisions still in force wins; one made
      // before someone applied newer decisions does not.
      if (saved && saved.base === base && saved.decisions && Array.isArray(saved.order)) {
        saved.decisions = filterKnown(saved.decisions);
        saved.order = saved.order.filter(function (id) { return saved.decisions[id] === "approved"; });
        return saved;
      }
    } catch (e) { /* storage disabled: start from the applied decisions */ }
    return fresh;
  }

  function filterKnown(decisions) {
    var out = {};
    Object.keys(decisions || {}).forEach(function (id) {
      if (id in clips && (decisions[id] === "approved" || decisions[id] === "rejected")) out[id] = decisions[id];
    });
    return out;
  }

  function save() {
    if (app) return;
    try { localStorage.setItem(storeKey, JSON.stringify(state)); } catch (e) { /* ignore */ }
  }

  /* Buttons toggle (pressing Approve on an approved clip clears it); keys do not. */
  function decide(id, choice, toggle) {
    var before = state.decisions[id];
    if (toggle && choice === before) choice = null;
    if (app) {
      serverChange({ action: "decide", id: id, choice: choice }, function () { saidDecision(id, choice); });
      return;
    }
    if (choice === null) {
      delete state.decisions[id];
      choice = null;
    } else {
      state.decisions[id] = choice;
    }
    var at = state.order.indexOf(id);
    if (choice === "approved" && at < 0) state.order.push(id);
    if (choice !== "approved" && at >= 0) state.order.splice(at, 1);
    save();
    render();
    saidDecision(id, choice);
  }

  function saidDecision(id, choice) {
    var name = clips[id].name;
    var saved = app ? " Saved." : "";
    if (choice === "approved") say("Approved " + name + ": number " + (state.order.indexOf(id) + 1) + " in the running order." + saved);
    else if (choice === "rejected") say("Rejected " + name + "." + saved);
    else say("Decision cleared for " + name + "." + saved);
  }

  function move(id, delta) {
    var at = state.order.indexOf(id);
    if (at < 0) { say(clips[id].name + " is not approved, so it has no place in the running order yet."); return false; }
    var to = at + delta;
    if (to < 0 || to >= state.order.length) { say(clips[id].name + " is already " + (delta < 0 ? "first." : "last.")); return false; }
    var order = state.order.slice();
    order.splice(at, 1);
    order.splice(to, 0, id);
    var moved = function () {
      say("Moved " + clips[id].name + " to number " + (to + 1) + " of " + state.order.length + "." + (app ? " Saved." : ""));
    };
    if (app) { serverChange({ action: "order", order: order }, moved); return true; }
    state.order = order;
    save();
    render();
    moved();
    return true;
  }

  /* The review app: one change at a time, in the order the editor made them; the
   * page shows what the server recorded (or why it refused). */
  function api(method, path, body) {
    var opts = { method: method, credentials: "same-origin", headers: { "X-CSRF-Token": app.csrf } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(path, opts).then(function (r) {
      if (r.status === 401) { location.assign("/login"); throw new Error("Signed out: sign in again."); }
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) throw new Error(j.error || ("The server answered " + r.status + "."));
        return j;
      });
    });
  }

  function fromServer(j) {
    var d = j.decisions;
    state.decisions = d ? filterKnown(d.decisions) : {};
    state.order = d ? d.order.filter(function (id) { return id in clips; }) : [];
    state.history = j.history || [];
    render();
  }

  function serverChange(change, done) {
    saving = saving.then(function () {
      return api("POST", "/api/decisions", change).then(function (j) {
        $$(".save-error").forEach(function (n) { n.textContent = ""; });
        fromServer(j);
        done();
      });
    }).catch(function (e) {
      say("Not saved: " + e.message);
      var card = change.id ? $("#c-" + change.id) : null;
      var note = card ? $(".save-error", card) : null;
      if (note) note.textContent = e.message;
      return api("GET", "/api/decisions").then(fromServer).catch(function () { /* keep what is shown */ });
    });
  }

  function sendCut() {
    var button = $("#send");
    button.disabled = true;
    say("Sending the cut…");
    saving.then(function () { return api("POST", "/api/send", {}); }).then(function (j) {
      say(j.message);
      return waitForRun(j.run_id);
    }).catch(function (e) {
      say("Not sent: " + e.message);
      button.disabled = false;
    });
  }

  function waitForRun(runId) {
    return new Promise(function (ok) { setTimeout(ok, 2000); }).then(function () {
      return api("GET", "/api/runs/" + encodeURIComponent(runId));
    }).then(function (j) {
      say(j.message);
      if (!j.final) return waitForRun(runId);
      if (j.ok) location.reload(); // the rebuilt page previews the new compilation
      else $("#send").disabled = false;
    });
  }

  function render() {
    cards.forEach(function (card) {
      var id = card.dataset.id;
      var choice = state.decisions[id] || null;
      card.dataset.decision = choice || "undecided";
      var pos = state.order.indexOf(id);
      $(".decision-state", card).textContent =
        choice === "approved" ? "Approved, number " + (pos + 1) + " of " + state.order.length :
        choice === "rejected" ? "Rejected" : "Not decided";
      var badge = $(".status[data-status]", card);
      if (badge) {
        var shown = choice === "rejected" ? "rejected by an editor" : choice === "approved" && !clips[id].refusal ? "approved" : badge.dataset.status;
        badge.textContent = shown;
        badge.className = "status status-" + (choice === "rejected" ? "rejected" : choice === "approved" && !clips[id].refusal ? "accepted" : badge.dataset.status);
      }
      $$("button[data-act]", card).forEach(function (b) {
        var act = b.dataset.act;
        if (act === "approve") b.setAttribute("aria-pressed", String(choice === "approved"));
        if (act === "reject") b.setAttribute("aria-pressed", String(choice === "rejected"));
        if (act === "earlier") b.disabled = pos <= 0;
        if (act === "later") b.disabled = pos < 0 || pos === state.order.length - 1;
      });
    });
    var list = $("#order-list");
    list.textContent = "";
    var total = 0, going = 0, leftOut = [];
    state.order.forEach(function (id, i) {
      if (clips[id].refusal) leftOut.push(clips[id].name + " (" + clips[id].refusal + ")");
      else { total += clips[id].duration || 0; going += 1; }
      var li = document.createElement("li");
      li.dataset.id = id;
      var name = document.createElement("a");
      name.href = "#c-" + id;
      name.textContent = clips[id].name;
      name.setAttribute("dir", "auto");
      li.appendChild(name);
      var meta = document.createElement("span");
      meta.className = "muted";
      meta.textContent = " " + (clips[id].duration || 0).toFixed(1) + " s " + (clips[id].refusal ? "(left out: " + clips[id].refusal + ") " : "");
      li.appendChild(meta);
      [["earlier", "↑", "Move earlier: ", i === 0], ["later", "↓", "Move later: ", i === state.order.length - 1],
       ["remove", "✕", "Remove from running order (clear decision): ", false]].forEach(function (spec) {
        var b = document.createElement("button");
        b.type = "button";
        b.dataset.orderAct = spec[0];
        b.textContent = spec[1];
        b.setAttribute("aria-label", spec[2] + clips[id].name);
        b.title = spec[2] + clips[id].name;
        b.disabled = spec[3];
        li.appendChild(b);
      });
      list.appendChild(li);
    });
    var rejected = Object.keys(state.decisions).filter(function (id) { return state.decisions[id] === "rejected"; }).length;
    var summary = $("#order-summary");
    summary.textContent = going
      ? going + " clip" + (going === 1 ? "" : "s") + " will be compiled, " + formatTime(total) + " of clips (title cards come on top); " + rejected + " rejected."
      : "Nothing approved yet. Approve clips below (button or A) and they are added here in order; " + rejected + " rejected.";
    if (leftOut.length) summary.textContent += " Approved but left out: " + leftOut.join("; ") + ".";
    summary.dataset.clips = String(going);
    summary.dataset.seconds = total.toFixed(2);
    if ($("#editor")) $("#editor").value = state.editor || "";
    if (app && state.history && state.history.length) {
      var last = state.history[0];
      summary.textContent += " Last saved by " + last.by + " at " + last.at + ".";
    }
  }

  function formatTime(s) {
    s = Math.round(s);
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function exportDecisions() {
    var editor = $("#editor").value.trim();
    state.editor = editor;
    save();
    var out = {
      version: 1,
      editor: editor,
      decided_at: new Date().toISOString(),
      order: state.order.slice(),
      decisions: Object.assign({}, state.decisions)
    };
    var blob = new Blob([JSON.stringify(out, null, 2) + "\n"], { type: "application/json" });
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "decisions.json";
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    say("Exported decisions.json: " + out.order.length + " approved, " +
        (Object.keys(out.decisions).length - out.order.length) + " rejected" +
        (editor ? ", by " + editor : " (no name given: add yours above)") +
        ". Apply it with: reel review apply decisions.json --out OUTPUT_FOLDER");
  }

  function currentCard() {
    var el = document.activeElement;
    var card = el && el.closest ? el.closest("article.card[data-id]") : null;
    return card || lastCard;
  }

  function focusCard(card) {
    if (!card) return;
    lastCard = card;
    card.focus();
    card.scrollIntoView({ block: "nearest" });
  }

  function step(delta) {
    var all = $$("article.card");
    if (!all.length) return;
    var cur = currentCard();
    var at = cur ? all.indexOf(cur) : -1;
    var to = at < 0 ? (delta > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, at + delta));
    focusCard(all[to]);
  }

  document.addEventListener("focusin", function (ev) {
    var card = ev.target.closest ? ev.target.closest("article.card") : null;
    if (card) lastCard = card;
  });

  document.addEventListener("click", function (ev) {
    var b = ev.target.closest ? ev.target.closest("button") : null;
    if (!b) return;
    if (b.dataset.act) {
      var id = b.closest("article.card").dataset.id;
      if (b.dataset.act === "approve") decide(id, "approved", true);
      else if (b.dataset.act === "reject") decide(id, "rejected", true);
      else if (b.dataset.act === "earlier") move(id, -1);
      else if (b.dataset.act === "later") move(id, +1);
      var again = $("#c-" + id + " button[data-act='" + b.dataset.act + "']");
      if (again && !again.disabled) again.focus(); else focusCard($("#c-" + id));
    } else if (b.dataset.orderAct) {
      var oid = b.closest("li").dataset.id;
      var act = b.dataset.orderAct;
      if (act === "remove") decide(oid, null);
      else move(oid, act === "earlier" ? -1 : +1);
      var same = $("#order-list li[data-id='" + oid + "'] button[data-order-act='" + act + "']");
      if (same && !same.disabled) same.focus();
      else if ($("#order-list li[data-id='" + oid + "'] button:not([disabled])")) $("#order-list li[data-id='" + oid + "'] button:not([disabled])").focus();
      else $("#order-heading").focus();
    } else if (b.dataset.seek !== undefined) {
      var v = $("#compilation-video");
      v.currentTime = parseFloat(b.dataset.seek);
      v.play().catch(function () { /* autoplay refused: the editor presses play */ });
      say("Playing the compilation from " + b.textContent.trim() + ".");
    } else if (b.id === "export") {
      exportDecisions();
    } else if (b.id === "send") {
      sendCut();
    } else if (b.id === "help-toggle") {
      var help = $("#keys");
      help.open = !help.open;
    }
  });

  if ($("#editor")) $("#editor").addEventListener("input", function () { state.editor = this.value; save(); });

  document.addEventListener("keydown", function (ev) {
    var t = ev.target;
    if (ev.ctrlKey || ev.metaKey) return;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) return;
    var onMedia = t && t.tagName === "VIDEO";
    var key = ev.key;
    var card = currentCard();
    var id = card ? card.dataset.id : null;
    var handled = true;
    if (ev.altKey && (key === "ArrowUp" || key === "ArrowDown")) {
      if (id) move(id, key === "ArrowUp" ? -1 : +1); else handled = false;
    } else if (ev.altKey) {
      handled = false;
    } else if (key === "j" || (key === "ArrowDown" && !onMedia)) {
      step(+1);
    } else if (key === "k" || (key === "ArrowUp" && !onMedia)) {
      step(-1);
    } else if ((key === "a" || key === "r" || key === "u") && id) {
      decide(id, key === "a" ? "approved" : key === "r" ? "rejected" : null);
    } else if ((key === "[" || key === "]") && id) {
      move(id, key === "[" ? -1 : +1);
    } else if (key === "p" && card && $("video", card)) {
      var v = $("video", card);
      if (v.paused) v.play().catch(function () {}); else v.pause();
    } else if (key === "e" && !app) {
      exportDecisions();
    } else if (key === "?") {
      $("#keys").open = !$("#keys").open;
    } else {
      handled = false;
    }
    if (handled) ev.preventDefault();
  });

  render();
  if (data.decisions && app) {
    say("Signed in as " + app.editor + ". Every change is saved at once.");
  } else if (data.decisions) {
    say("Decisions in force: applied by " + (data.decisions.applied_by || "unknown") + " at " +
        (data.decisions.applied_at || "unknown time") + ".");
  }
})();
