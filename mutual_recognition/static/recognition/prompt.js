/* The embedded recognition prompt: decisions per row, quick bulk actions, save, postMessage,
 * external reports opened in a new tab.
 *
 * The page token (data-ctx) only ever travels in POST bodies: saving, and fetching an external
 * lab report PDF (shown from a blob: URL) or the platform viewer's address of an exam report.
 * It never appears in a URL, so it cannot reach access logs, browser history or a Referer.
 *
 * postMessage contract (docs/recognition.md): to window.parent (iframe) or window.opener
 * (pop-up), for each allowed HIS origin and this page's own origin:
 *   {type: "hr-recognition:ready",  version: 1, visitId, pending}
 *   {type: "hr-recognition:saved",  version: 1, visitId, batch, orders: [...]}
 *   {type: "hr-recognition:closed", version: 1, visitId, saved}
 */
(function () {
  "use strict";
  var root = document.getElementById("prompt");
  if (!root) return;
  var reasons = JSON.parse(root.dataset.reasons || "{}");
  var targets = JSON.parse(root.dataset.targets || "[]");
  var rows = Array.prototype.slice.call(document.querySelectorAll(".decision-row"));
  var saveBtn = document.getElementById("save");
  var counts = document.getElementById("counts");
  var errorsBox = document.getElementById("errors");
  var bulk = false;
  var saved = false;

  function post(message) {
    message.version = 1;
    message.visitId = root.dataset.visit;
    var hosts = [];
    if (window.parent && window.parent !== window) hosts.push(window.parent);
    if (window.opener) hosts.push(window.opener);
    var origins = targets.concat([window.location.origin]);
    hosts.forEach(function (host) {
      origins.forEach(function (origin) {
        try { host.postMessage(message, origin); } catch (e) { /* origin mismatch: ignored by design */ }
      });
    });
  }

  function refuse(row) { return row.querySelector(".refuse"); }

  function setDecision(row, value) {
    row.dataset.decision = value;
    var box = refuse(row);
    if (value === "2") {
      var sel = row.querySelector(".reason");
      if (!sel.value) {  // quick: reuse the reason already chosen in the same card
        var other = Array.prototype.find.call(
          row.closest(".pcard").querySelectorAll('.decision-row[data-decision="2"] .reason'),
          function (s) { return s !== sel && s.value; });
        if (other) sel.value = other.value;
      }
      noteState(row);
    }
    update();
  }

  function noteState(row) {
    var sel = row.querySelector(".reason");
    var info = reasons[sel.value];
    refuse(row).classList.toggle("needs-note", !!(info && info.needsNote));
  }

  function rowProblem(row) {
    var d = row.dataset.decision;
    if (d !== "1" && d !== "2") return "open";
    if (d === "2") {
      var sel = row.querySelector(".reason");
      if (!sel.value) return "reason";
      var info = reasons[sel.value];
      if (info && info.needsNote && !row.querySelector(".note").value.trim()) return "note";
    }
    return "";
  }

  function update() {
    var yes = 0, no = 0, open = 0, incomplete = 0;
    rows.forEach(function (row) {
      var p = rowProblem(row);
      if (row.dataset.decision === "1") yes++;
      else if (row.dataset.decision === "2") no++;
      else open++;
      if (p === "reason" || p === "note") incomplete++;
      row.querySelector(".reason").classList.toggle("missing", p === "reason" && row.dataset.touched === "1");
      row.querySelector(".note").classList.toggle("missing", p === "note" && row.dataset.touched === "1");
    });
    var text = '互认 <b class="c-yes">' + yes + '</b> 项 · 不互认 <b class="c-no">' + no + '</b> 项';
    if (open) text += ' · <b class="c-open">' + open + '</b> 项未选择';
    if (incomplete) text += ' · <b class="c-open">' + incomplete + '</b> 项待填不互认原因';
    counts.innerHTML = text;
    if (saveBtn) saveBtn.disabled = saved || open > 0 || incomplete > 0 || saveBtn.dataset.blocked === "1";
  }

  rows.forEach(function (row) {
    row.querySelectorAll(".seg button").forEach(function (b) {
      b.addEventListener("click", function () { row.dataset.touched = "1"; bulk = false; setDecision(row, b.dataset.value); });
    });
    var sel = row.querySelector(".reason");
    sel.addEventListener("change", function () { noteState(row); update(); });
    row.querySelector(".note").addEventListener("input", update);
    if (row.dataset.reason) sel.value = row.dataset.reason;
    if (row.dataset.note) { row.querySelector(".note").value = row.dataset.note; }
    if (row.dataset.decision === "2") noteState(row);
  });

  document.querySelectorAll(".pcard").forEach(function (card) {
    var yes = card.querySelector(".card-yes"), no = card.querySelector(".card-no");
    var mine = function () { return card.querySelectorAll(".decision-row"); };
    if (yes) yes.addEventListener("click", function () { mine().forEach(function (r) { setDecision(r, "1"); }); });
    if (no) no.addEventListener("click", function () {
      mine().forEach(function (r) { r.dataset.touched = "1"; setDecision(r, "2"); });
      var first = card.querySelector(".reason"); if (first && !first.value) first.focus();
    });
  });
  var allYes = document.getElementById("all-yes");
  if (allYes) allYes.addEventListener("click", function () { rows.forEach(function (r) { setDecision(r, "1"); }); bulk = true; update(); });

  // A reason picked in one row of a card fills the other refused rows of that card that have none.
  document.querySelectorAll(".pcard").forEach(function (card) {
    card.addEventListener("change", function (ev) {
      if (!ev.target.classList.contains("reason") || !ev.target.value) return;
      card.querySelectorAll('.decision-row[data-decision="2"] .reason').forEach(function (s) {
        if (!s.value) { s.value = ev.target.value; noteState(s.closest(".decision-row")); }
      });
      update();
    });
  });

  function describe(order) {
    var names = function (list, key) { return list.map(function (x) { return x[key]; }).join("、"); };
    if (order.action === "cancel") return order.itemName + "：采用外院结果，不再开立";
    if (order.action === "reduce") return order.itemName + "：部分互认（" + names(order.recognized, "subItemName") +
      "），仍需开立 " + names(order.keepSubItems, "subItemName");
    if (order.refused && order.refused.length) return order.itemName + "：不互认（" + order.refused[0].reasonName + "），照常开立";
    return order.itemName + "：照常开立";
  }

  if (saveBtn) saveBtn.addEventListener("click", function () {
    errorsBox.textContent = "";
    var decisions = rows.map(function (row) {
      return {
        orderId: row.closest(".pcard").dataset.order, standardCode: row.dataset.std, reportId: row.dataset.report,
        decision: row.dataset.decision, reasonCode: row.dataset.decision === "2" ? row.querySelector(".reason").value : "",
        note: row.dataset.decision === "2" ? row.querySelector(".note").value.trim() : ""
      };
    });
    saveBtn.disabled = true;
    saveBtn.textContent = "正在保存…";
    fetch(root.dataset.saveUrl, {
      method: "POST", headers: {"Content-Type": "application/json"}, credentials: "same-origin",
      body: JSON.stringify({ctx: root.dataset.ctx, decisions: decisions, bulk: bulk})
    }).then(function (r) { return r.json().then(function (j) { return {status: r.status, body: j}; }); })
      .then(function (res) {
        if (!res.body.ok) {
          errorsBox.textContent = (res.body.errors || []).map(function (e) { return e.message; }).join("；") || "保存失败";
          saveBtn.textContent = "保存互认决定";
          update();
          return;
        }
        saved = true;
        document.body.classList.add("is-saved");
        document.querySelectorAll(".seg button, .reason, .note, .btn-mini, #all-yes").forEach(function (el) { el.disabled = true; });
        var list = document.getElementById("done-list");
        res.body.orders.forEach(function (o) { var li = document.createElement("li"); li.textContent = describe(o); list.appendChild(li); });
        document.getElementById("savebar").hidden = true;
        document.getElementById("done").hidden = false;
        post({type: "hr-recognition:saved", batch: res.body.batch, orders: res.body.orders});
      })
      .catch(function () {
        errorsBox.textContent = "网络异常，未能保存，请重试。";
        saveBtn.textContent = "保存互认决定";
        update();
      });
  });

  function openReport(button) {
    // The tab is opened during the click (pop-up blockers allow that) and filled once the fetch answers.
    var tab = window.open("", "_blank");
    if (tab) {
      tab.opener = null;
      tab.document.title = "正在打开外院报告…";
      tab.document.body.textContent = "正在打开外院报告…";
    }
    errorsBox.textContent = "";
    button.disabled = true;
    fetch(button.dataset.open, {
      method: "POST", headers: {"Content-Type": "application/json"}, credentials: "same-origin",
      body: JSON.stringify({ctx: root.dataset.ctx, org: button.dataset.org, report: button.dataset.report})
    }).then(function (r) {
      if (r.ok && (r.headers.get("Content-Type") || "").indexOf("application/pdf") === 0) {
        return r.blob().then(function (pdf) { return URL.createObjectURL(pdf); });
      }
      return r.json().then(function (j) {
        if (r.ok && j.url) return j.url;
        throw {shown: (j.errors || []).map(function (e) { return e.message; }).join("；") || "未能打开外院报告。"};
      });
    }).then(function (url) {
      if (tab && !tab.closed) tab.location.replace(url);
      else if (!window.open(url, "_blank", "noopener")) errorsBox.textContent = "浏览器阻止了新窗口，请允许本页打开新窗口后重试。";
    }).catch(function (err) {
      if (tab) tab.close();
      errorsBox.textContent = (err && err.shown) || "网络异常，未能打开外院报告，请重试。";
    }).then(function () { button.disabled = false; });
  }

  document.querySelectorAll(".report-link[data-open]").forEach(function (button) {
    button.addEventListener("click", function () { openReport(button); });
  });

  document.getElementById("close").addEventListener("click", function () {
    post({type: "hr-recognition:closed", saved: saved});
    if (window.opener) window.close();
  });

  update();
  post({type: "hr-recognition:ready", pending: rows.length});
})();
