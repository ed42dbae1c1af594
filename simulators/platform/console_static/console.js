// 联调台：故障开关。每个开关把一个接口的一项故障打开或关闭（POST /console/api/faults，
// 与 /_sim/faults 同一套故障配置），再按平台返回的状态刷新页面上该接口的所有开关。
(function () {
  "use strict";

  var statusBox = null;

  function say(text, isError) {
    statusBox = statusBox || document.getElementById("console-status");
    if (!statusBox) return;
    statusBox.textContent = text;
    statusBox.className = isError ? "error" : "done";
  }

  function post(body, url) {
    return fetch(url || "/console/api/faults", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    }).then(function (r) {
      return r.json().then(
        function (data) {
          if (!r.ok) throw new Error(data.error || "操作失败（HTTP " + r.status + "）");
          return data;
        },
        function () {
          throw new Error("模拟器的应答无法读取（HTTP " + r.status + "）");
        }
      );
    });
  }

  // Reflect the switches of one interface (or of every interface) as the platform now holds them.
  function reflect(interfaces, onlyCode) {
    var boxes = document.querySelectorAll("[data-interface]");
    boxes.forEach(function (box) {
      var code = box.getAttribute("data-interface");
      if (onlyCode && code !== onlyCode) return;
      var switches = interfaces[code] || {};
      box.querySelectorAll("input[data-fault]").forEach(function (input) {
        var fault = input.getAttribute("data-fault");
        var on = Object.prototype.hasOwnProperty.call(switches, fault);
        input.checked = on;
        input.disabled = false;
        input.closest("label").classList.toggle("on", on);
        var value = box.querySelector('[data-value-for="' + fault + '"]');
        if (on && value) value.value = switches[fault];
      });
    });
  }

  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("input[data-fault]")) return;
    var box = input.closest("[data-interface]");
    var code = box.getAttribute("data-interface");
    var fault = input.getAttribute("data-fault");
    var body = { interface: code, fault: fault, on: input.checked };
    var value = box.querySelector('[data-value-for="' + fault + '"]');
    if (value && value.value !== "") body.value = value.type === "number" ? Number(value.value) : value.value;
    var wanted = input.checked;
    input.disabled = true;
    say("正在" + (wanted ? "开启" : "关闭") + "……", false);
    post(body).then(
      function (data) {
        reflect(data.faults.interfaces, code);
        say(data.message, false);
      },
      function (err) {
        input.checked = !wanted;
        input.disabled = false;
        say(err.message, true);
      }
    );
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-clear-faults]") : null;
    if (!button) return;
    button.disabled = true;
    post({ clear: true }).then(
      function (data) {
        say(data.message + "，页面即将刷新", false);
        window.location.reload();
      },
      function (err) {
        button.disabled = false;
        say(err.message, true);
      }
    );
  });
  // 质控反馈：下发一条质控问题（POST /console/api/findings），成功后刷新列表。
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute || !form.hasAttribute("data-raise-finding")) return;
    event.preventDefault();
    var body = {};
    new FormData(form).forEach(function (value, name) {
      if (value === "") return;
      body[name] = name === "replyInHours" ? Number(value) : value;
    });
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    say("正在下发……", false);
    post(body, "/console/api/findings").then(
      function (data) {
        say(data.message + "，页面即将刷新", false);
        window.location.reload();
      },
      function (err) {
        button.disabled = false;
        say(err.message, true);
      }
    );
  });
})();
