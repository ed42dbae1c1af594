/* E-signature pages: UKey agent calls, QR polling, approval signing. No framework, no build. */
(function () {
  "use strict";

  function csrf() {
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (m) return decodeURIComponent(m[1]);
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf()},
      body: JSON.stringify(body || {})
    }).then(function (r) { return r.json(); });
  }

  function getJSON(url) {
    return fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); });
  }

  /* The local UKey client service (the vendor's workstation agent, docs/esign-protocol.md). It answers
     only this system's origin, and signs only with the PIN sent with each signing batch. */
  function agent(base) {
    base = (base || "").replace(/\/$/, "");
    function call(path, body) {
      var opts = body === undefined ? {} : {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
      return fetch(base + path, opts).then(function (r) {
        return r.json().then(function (d) { d._status = r.status; return d; });
      }, function () {
        throw new Error("无法连接本机 UKey 客户端服务：请确认已插入 UKey、已启动 UKey 客户端，" +
                        "且 UKey 客户端允许本系统地址（" + window.location.origin + "）访问。");
      });
    }
    return {
      status: function () { return call("/api/v1/status"); },
      certs: function () { return call("/api/v1/certs"); },
      /* One signing batch: the PIN goes with the items (Base64); the answer's signatures are in the same order. */
      sign: function (certSn, pin, items) { return call("/api/v1/sign", {certSn: certSn, pin: pin, items: items}); },
      logout: function () { return call("/api/v1/logout", {}); }
    };
  }

  function show(el, text, kind) {
    el.hidden = false;
    el.textContent = text;
    el.className = "notice" + (kind ? " " + kind : "");
  }

  function fmtDate(iso) { return (iso || "").slice(0, 10); }

  function ukeyLogin(panel) {
    var ukey = agent(panel.dataset.agent);
    var list = document.getElementById("cert-list"), state = document.getElementById("agent-state");
    var pin = document.getElementById("ukey-pin"), submit = document.getElementById("ukey-submit");
    var msg = document.getElementById("ukey-message"), keySerial = "";

    function load() {
      ukey.status().then(function (s) {
        if (!s.present) { state.textContent = "未检测到 UKey，请插入 UKey 后刷新本页。"; return null; }
        keySerial = s.keySerial;
        state.textContent = s.vendor + " · UKey 唯一标识 " + s.keySerial + (s.locked ? "（已锁定）" : "");
        return ukey.certs();
      }).then(function (d) {
        if (!d) return;
        list.innerHTML = "";
        d.certs.forEach(function (c, i) {
          var label = document.createElement("label");
          label.className = "cert-option";
          label.innerHTML = '<input type="radio" name="cert"><div><div class="cn"></div><div class="meta"></div></div>';
          var radio = label.querySelector("input");
          radio.value = c.certSn; radio.checked = i === 0;
          label.querySelector(".cn").textContent = c.subject + "（工号 " + c.staffNo + "）";
          label.querySelector(".meta").textContent = "证书序列号 " + c.certSn + " · 颁发者 " + c.issuer +
            " · 有效期 " + fmtDate(c.notBefore) + " 至 " + fmtDate(c.notAfter);
          list.appendChild(label);
        });
        if (!d.certs.length) { state.textContent += " · UKey 中没有证书"; return; }
        pin.disabled = false; submit.disabled = false; pin.focus();
      }).catch(function (e) { state.textContent = e.message; });
    }

    document.getElementById("ukey-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var chosen = list.querySelector("input[name=cert]:checked");
      if (!chosen) { show(msg, "请选择证书。", "err"); return; }
      if (!pin.value) { show(msg, "请输入证书密码（PIN 码）。", "err"); return; }
      submit.disabled = true;
      show(msg, "正在验证…");
      var certSn = chosen.value, entered = pin.value, challenge;
      post(panel.dataset.challengeUrl).then(function (c) {
        if (!c.ok) throw new Error(c.message);
        challenge = c.challenge;
        return ukey.sign(certSn, entered, [challenge]);
      }).then(function (s) {
        if (!s.signatures) throw new Error(s.message || "UKey 签名失败");
        return post(panel.dataset.loginUrl, {challenge: challenge, certificate: s.certificate, signature: s.signatures[0], keySerial: s.keySerial || keySerial});
      }).then(function (r) {
        if (!r.ok) { ukey.logout(); throw new Error(r.message); }
        show(msg, r.message, "ok");
        window.location.href = r.redirect;
      }).catch(function (e) {
        show(msg, e.message, "err");
        pin.value = ""; submit.disabled = false;
      });
    });
    load();
  }

  /* ``reload`` opens the page again with a GET (location.replace): never window.location.reload(),
     which would post a form again when the page was the answer to one (issue 18: a second
     开启自动签名 replaced the grant just confirmed with a new unconfirmed one). */
  function poll(url, stateEl, opts) {
    opts = opts || {};
    var stopOn = opts.stopOn || ["REFUSE", "EXPIRE"];
    var timer = setInterval(function () {
      getJSON(url).then(function (d) {
        stateEl.textContent = d.message || "";
        if (d.redirect) { clearInterval(timer); stateEl.className = "qr-state ok"; window.location.href = d.redirect; return; }
        if (!d.ok) { clearInterval(timer); stateEl.className = "qr-state err"; return; }
        if (opts.doneWhen && opts.doneWhen(d)) { clearInterval(timer); stateEl.className = "qr-state ok"; if (opts.reload) window.location.replace(window.location.href); return; }
        if (stopOn.indexOf(d.status) >= 0) { clearInterval(timer); stateEl.className = "qr-state " + (d.status === "FINISH" ? "ok" : "err"); }
      }).catch(function () { stateEl.textContent = "网络异常，正在重试…"; });
    }, 1500);
    return timer;
  }

  function approvePanel(panel, status) {
    if (!panel) return;
    var stateEl = document.getElementById("approve-state");
    if (status === "signing") { poll(panel.dataset.statusUrl, stateEl, {stopOn: []}); return; }
    var button = document.getElementById("approve");
    if (!button || button.dataset.mode !== "ukey") return;
    var ukey = agent(panel.dataset.agent), pin = document.getElementById("approve-pin");
    /* 审核并签名 with the UKey: the PIN is asked for this signing, the UKey keeps no login that signs. */
    button.form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!pin.value) { show(stateEl, "请输入证书密码（PIN 码）：每次签名都需输入。", "err"); pin.focus(); return; }
      var entered = pin.value;
      button.disabled = true;
      show(stateEl, "正在使用 UKey 签名…");
      post(panel.dataset.signDataUrl).then(function (d) {
        if (!d.ok) throw new Error(d.message);
        return ukey.sign(d.certSn, entered, [d.data]);
      }).then(function (s) {
        if (!s.signatures) throw new Error(s.message || "UKey 签名失败");
        return post(panel.dataset.approveUrl, {signature: s.signatures[0], certificate: s.certificate});
      }).then(function (r) {
        if (!r.ok) throw new Error(r.message);
        window.location.href = r.redirect;
      }).catch(function (e) { show(stateEl, e.message, "err"); pin.value = ""; button.disabled = false; });
    });
  }

  function checkAll(id, name) {
    var all = document.getElementById(id);
    if (!all) return;
    all.addEventListener("change", function () {
      document.querySelectorAll("input[name=" + name + "]").forEach(function (b) { b.checked = all.checked; });
    });
  }

  /* Removing the UKey ends the UKey signing session. */
  function watchUkey() {
    var bar = document.getElementById("esign-status");
    if (!bar || bar.dataset.sessionKind !== "ukey") return;
    var ukey = agent(bar.dataset.agentUrl), misses = 0;
    var form = bar.querySelector(".esign-logout-form");
    setInterval(function () {
      ukey.status().then(function (s) { misses = s.present ? 0 : misses + 1; }, function () { misses += 1; })
        .then(function () {
          if (misses < 2 || !form) return;
          var fd = new FormData(form); fd.append("reason", "ukey_removed");
          fetch(form.action, {method: "POST", body: fd, credentials: "same-origin", headers: {"Accept": "application/json"}})
            .then(function () { window.location.replace(window.location.href); });
          misses = -1000;
        });
    }, 5000);
  }

  function readUkeyButtons(table) {
    if (!table) return;
    var ukey = agent(table.dataset.agent);
    table.querySelectorAll(".read-ukey").forEach(function (b) {
      b.addEventListener("click", function () {
        var input = b.parentNode.querySelector("input[name=ukey_serial]");
        ukey.status().then(function (s) {
          if (!s.present) throw new Error("未检测到 UKey");
          input.value = s.keySerial;
        }).catch(function (e) { alert(e.message); });
      });
    });
  }

  /* Logging out of e-signature also ends the UKey's login state (signing needs the PIN every time anyway). */
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.classList || !form.classList.contains("esign-logout-form")) return;
    var bar = document.getElementById("esign-status");
    var url = bar ? bar.dataset.agentUrl : "";
    if (url) { try { agent(url).logout().catch(function () {}); } catch (e) { /* agent absent */ } }
  }, true);

  window.ESign = {agent: agent, post: post, getJSON: getJSON, show: show,
                  ukeyLogin: ukeyLogin, poll: poll, approvePanel: approvePanel, checkAll: checkAll,
                  watchUkey: watchUkey, readUkeyButtons: readUkeyButtons};
})();
