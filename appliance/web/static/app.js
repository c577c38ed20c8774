// Anya Edge pages: confirmations, the live log, waiting for a reboot, copy buttons, the
// wallet dashboard that follows the sync, and the fee suggestion of the send form.
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

  // Copy buttons (data-copy names the element whose text they copy) are hidden until this
  // script shows them. The box is served over plain HTTP, where browsers offer no
  // navigator.clipboard, so the fallback copies from a selected, off-screen textarea.
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var ta = document.createElement("textarea");
      ta.value = text;
      ta.setAttribute("readonly", "");
      ta.className = "offscreen";
      document.body.appendChild(ta);
      ta.select();
      var ok = false;
      try {
        ok = document.execCommand("copy");
      } catch (e) {
        ok = false;
      }
      document.body.removeChild(ta);
      if (ok) {
        resolve();
      } else {
        reject(new Error("copy failed"));
      }
    });
  }

  function setupCopyButtons() {
    document.querySelectorAll("button[data-copy]").forEach(function (btn) {
      var target = document.getElementById(btn.getAttribute("data-copy"));
      if (!target) {
        return;
      }
      var label = btn.textContent;
      var timer = 0;
      function flash(text, ok) {
        btn.textContent = text;
        btn.classList.toggle("copied", ok);
        window.clearTimeout(timer);
        timer = window.setTimeout(function () {
          btn.textContent = label;
          btn.classList.remove("copied");
        }, 2000);
      }
      btn.hidden = false;
      btn.addEventListener("click", function () {
        var text = (target.tagName === "TEXTAREA" || target.tagName === "INPUT") ? target.value : target.textContent;
        copyText(text.trim()).then(function () {
          flash("Copied", true);
        }, function () {
          flash("Select and copy", false);
          var range = document.createRange();
          range.selectNodeContents(target);
          var sel = window.getSelection();
          sel.removeAllRanges();
          sel.addRange(range);
        });
      });
    });
  }

  // The wallet dashboard reloads its live part (#node-live) every data-refresh seconds while
  // the page is visible: it fetches the page again and swaps in the new part, so the page
  // and its updates are rendered by the same template.
  function followNode() {
    var live = document.getElementById("node-live");
    if (!live) {
      return;
    }
    var every = (Number(live.getAttribute("data-refresh")) || 5) * 1000;

    function poll() {
      if (document.hidden) {
        window.setTimeout(poll, every);
        return;
      }
      fetch(window.location.pathname, {
        cache: "no-store",
        headers: { "Accept": "text/html" }
      }).then(function (r) {
        if (r.redirected || r.status === 401) {
          throw new Error("logged out");
        }
        if (!r.ok) {
          throw new Error("HTTP " + r.status);
        }
        return r.text();
      }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("node-live");
        if (fresh) {
          live.replaceChildren.apply(live, Array.from(fresh.childNodes));
          live.setAttribute("data-updated", String(Date.now()));
        }
        window.setTimeout(poll, every);
      }).catch(function (err) {
        if (err.message !== "logged out") {
          window.setTimeout(poll, 3 * every);
        }
      });
    }
    window.setTimeout(poll, every);
  }

  // The send form prefills the fee rate suggested for the confirmation target; choosing
  // another target puts its suggestion in, unless the owner typed a rate of their own.
  function followFeeTarget() {
    var rate = document.getElementById("fee_rate");
    var targets = document.querySelectorAll("input[name=target][data-rate]");
    if (!rate || targets.length === 0) {
      return;
    }
    var suggested = rate.value;
    targets.forEach(function (t) {
      t.addEventListener("change", function () {
        var next = t.getAttribute("data-rate");
        if (t.checked && next && (rate.value === "" || rate.value === suggested)) {
          rate.value = next;
          suggested = next;
        }
      });
    });
  }

  function start() {
    followLog();
    waitForBox();
    setupCopyButtons();
    followNode();
    followFeeTarget();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
