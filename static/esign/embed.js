/* The embedded signing page (esign/embed.py): UKey or QR, then the signature goes back to the LIS
   page that opened it — postMessage to the link's origin only — and the LIS may poll its API too. */
(function () {
  "use strict";
  var root = document.getElementById("embed");
  if (!root) return;
  var E = window.ESign, origin = root.dataset.origin, stateEl = document.getElementById("embed-state");

  function tell(message) {
    [window.parent !== window ? window.parent : null, window.opener].forEach(function (target) {
      if (target) { try { target.postMessage(message, origin); } catch (e) { /* closed */ } }
    });
  }
  function signed(r) {
    var s = r.signature;
    E.show(stateEl, "已审核并签名：" + s.signerName + "（工号 " + s.signerStaffNo + "），证书序列号 " + s.certSerial +
           "，时间戳 " + (s.timestampTime || "—") + "。", "ok");
    document.getElementById("report-status").textContent = "已审核";
    root.dataset.state = "approved";
    tell({type: "esign.signed", reportId: r.reportId, version: r.version, signature: s});
  }
  function failed(message) { E.show(stateEl, message, "err"); tell({type: "esign.error", message: message}); }

  var existing = JSON.parse(document.getElementById("embed-signature").textContent || "null");
  if (existing) { tell({type: "esign.signed", reportId: existing.reportId, version: existing.reportVersion, signature: existing}); return; }
  var form = document.getElementById("embed-ukey");
  if (!form) return;

  /* UKey: the agent on this workstation answers this server's origin (the page is served from it). */
  var ukey = E.agent(root.dataset.agent), cert = null, keySerial = "";
  var pin = document.getElementById("embed-pin"), button = document.getElementById("embed-sign");
  var agentState = document.getElementById("agent-state");
  ukey.status().then(function (s) {
    if (!s.present) { agentState.textContent = "未检测到 UKey：请插入 UKey 后刷新，或使用扫码签名。"; return null; }
    keySerial = s.keySerial;
    agentState.textContent = s.vendor + " · UKey 唯一标识 " + s.keySerial;
    return ukey.certs();
  }).then(function (d) {
    if (!d) return;
    if (!d.certs.length) { agentState.textContent += " · UKey 中没有证书"; return; }
    cert = d.certs[0];
    agentState.textContent += " · 证书 " + cert.subject + "（工号 " + cert.staffNo + "）";
    pin.disabled = false; button.disabled = false;
  }).catch(function (e) { agentState.textContent = e.message; });

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!pin.value) { E.show(stateEl, "请输入证书密码（PIN 码）：每次签名都需输入。", "err"); pin.focus(); return; }
    var entered = pin.value;
    button.disabled = true;
    E.show(stateEl, "正在使用 UKey 签名…");
    E.post(root.dataset.signDataUrl, {certificate: cert.certificate, keySerial: keySerial}).then(function (d) {
      if (!d.ok) throw new Error(d.message);
      return ukey.sign(d.certSn, entered, [d.data]);
    }).then(function (s) {
      if (!s.signatures) throw new Error(s.message || "UKey 签名失败");
      return E.post(root.dataset.signUrl, {certificate: s.certificate, signature: s.signatures[0], keySerial: s.keySerial || keySerial});
    }).then(function (r) {
      if (!r.ok) throw new Error(r.message);
      form.hidden = true;
      signed(r);
    }).catch(function (e) { failed(e.message); pin.value = ""; button.disabled = false; });
  });

  /* QR: the 协同签名 APP scans (names the signer), then signs (auto-sign grant or a confirmation). */
  var qrBox = document.getElementById("embed-qr-box");
  document.getElementById("embed-qr").addEventListener("click", function () {
    E.post(root.dataset.qrUrl).then(function (d) {
      if (!d.ok) throw new Error(d.message);
      qrBox.hidden = false;
      qrBox.innerHTML = d.qrSvg + '<div class="qr-state" id="embed-qr-state">请用协同签名 APP 扫码（' + d.expiresAt + " 前有效）</div>";
      qrBox.dataset.content = d.qrContent;
      var timer = setInterval(function () {
        E.post(root.dataset.qrStatusUrl, {transactionId: d.transactionId}).then(function (r) {
          document.getElementById("embed-qr-state").textContent = r.message || "";
          if (!r.ok) { clearInterval(timer); failed(r.message); return; }
          if (r.signature) { clearInterval(timer); signed(r); return; }
          if (r.status === "SIGNING") { clearInterval(timer); waitPhone(); return; }
          if (r.status === "REFUSE" || r.status === "EXPIRE") { clearInterval(timer); }
        });
      }, 1500);
    }).catch(function (e) { failed(e.message); });
  });
  function waitPhone() {
    E.show(stateEl, "已推送到协同签名 APP，请在手机上确认签名…");
    var timer = setInterval(function () {
      E.getJSON(root.dataset.statusUrl).then(function (r) {
        if (!r.ok) { clearInterval(timer); failed(r.message); return; }
        if (r.signature) { clearInterval(timer); signed(r); return; }
        if (r.status !== "SIGNING") { clearInterval(timer); failed(r.message); }
      });
    }, 1500);
  }
})();
