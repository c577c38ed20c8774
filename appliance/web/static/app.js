// Anya Edge pages: confirmations, the live log, and waiting for a reboot.
// Loaded from the box itself; the Content-Security-Policy allows no inline script.
"use strict";

(function () {
  // Forms with data-confirm ask before they are sent.
  document.addEventListener("submit", function (ev) {
    var msg = ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) {
      ev.preventDefault();
    }
  });

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function logLine(entry) {
    var line = document.createElement("span");
    line.className = "log-line";
    var t = document.createElement("time");
    var d = new Date(entry.time);
    if (!isNaN(d.getTime())) {
      t.dateTime = d.toISOString();
      t.textContent = pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds());
    }
    line.appendChild(t);
    line.appendChild(document.createTextNode(" " + entry.text + "\n"));
    return line;
  }

  // The status page's log follows new lines while the page is open.
  function followLog() {
    var pre = document.getElementById("log");
    if (!pre) {
      return;
    }
    var after = Number(pre.getAttribute("data-last")) || 0;
    var keep = 500;
    pre.scrollTop = pre.scrollHeight;

    function poll() {
      fetch("/api/log?after=" + after + "&max=200", {
        cache: "no-store",
        headers: { "Accept": "application/json" }
      }).then(function (r) {
        if (r.status === 401) {
          throw new Error("logged out");
        }
        if (!r.ok) {
          throw new Error("HTTP " + r.status);
        }
        return r.json();
      }).then(function (entries) {
        var atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 32;
        entries.forEach(function (e) {
          pre.appendChild(logLine(e));
          after = e.seq;
        });
        while (pre.childElementCount > keep) {
          pre.removeChild(pre.firstElementChild);
        }
        if (atBottom) {
          pre.scrollTop = pre.scrollHeight;
        }
        window.setTimeout(poll, 5000);
      }).catch(function (err) {
        if (err.message !== "logged out") {
          window.setTimeout(poll, 15000);
        }
      });
    }
    window.setTimeout(poll, 5000);
  }

  // After Reboot or Power off, watch /healthz: a reboot is over when the box answers again
  // after being unreachable, or with a new X-Anya-Instance; a power off when it stops answering.
  function waitForBox() {
    var box = document.getElementById("wait");
    if (!box) {
      return;
    }
    var action = box.getAttribute("data-action");
    var instance = box.getAttribute("data-instance");
    var wentDown = false;
    var started = Date.now();

    function show(state) {
      box.querySelectorAll("[data-state]").forEach(function (el) {
        el.hidden = el.getAttribute("data-state") !== state;
      });
    }

    function again() {
      if (action === "reboot" && Date.now() - started > 5 * 60 * 1000) {
        show("slow");
      }
      window.setTimeout(poll, 2000);
    }

    function poll() {
      var ctl = new AbortController();
      var timer = window.setTimeout(function () { ctl.abort(); }, 4000);
      fetch("/healthz", { cache: "no-store", signal: ctl.signal }).then(function (r) {
        window.clearTimeout(timer);
        if (!r.ok) {
          throw new Error("HTTP " + r.status);
        }
        var now = r.headers.get("X-Anya-Instance");
        if (action === "reboot" && (wentDown || (now && now !== instance))) {
          window.location.assign("/");
          return;
        }
        again();
      }).catch(function () {
        window.clearTimeout(timer);
        wentDown = true;
        if (action === "poweroff") {
          show("off");
          box.querySelector(".spinner").hidden = true;
          return;
        }
        again();
      });
    }
    window.setTimeout(poll, 2000);
  }

  function start() {
    followLog();
    waitForBox();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
