// The counter console's little script: live job progress, and the PIN pad's keypad.
(function () {
  "use strict";

  function poll(url, every, onData) {
    function tick() {
      fetch(url, {credentials: "same-origin", cache: "no-store"})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data && onData(data)) { setTimeout(tick, every); } })
        .catch(function () { setTimeout(tick, every * 3); });
    }
    setTimeout(tick, every);
  }

  // A job's page: progress steps until it is done.
  var state = document.getElementById("job-state");
  if (state) {
    var job = state.getAttribute("data-job");
    poll("/jobs/" + encodeURIComponent(job) + "/state", 600, function (data) {
      state.textContent = data.state;
      document.getElementById("job-rule").textContent = data.rule ? "rule " + data.rule : "";
      document.getElementById("job-message").textContent = data.message || "";
      document.getElementById("pad-asking").textContent =
        data.pad_asking ? "PIN pad: " + data.pad_asking : "";
      var list = document.getElementById("job-steps");
      while (list.children.length < data.steps.length) {
        var step = data.steps[list.children.length];
        var li = document.createElement("li");
        li.textContent = step.t.toFixed(2) + "s " + step.message;
        list.appendChild(li);
      }
      if (data.result && Object.keys(data.result).length) {
        document.getElementById("job-result").textContent = JSON.stringify(data.result, null, 1);
      }
      return data.state === "running";
    });
  }

  // The PIN pad: wait for the next PIN asked for; a keypad for the 4-digit PINs.
  var pad = document.getElementById("pad");
  if (pad) {
    var token = pad.getAttribute("data-token");
    var kind = pad.getAttribute("data-kind");
    var padState = pad.getAttribute("data-state");
    if (!kind && padState === "running") {
      poll("/pinpad/" + encodeURIComponent(token) + "/state", 500, function (data) {
        if ((data.asking || "") !== kind || data.state !== padState) {
          window.location.replace("/pinpad/" + encodeURIComponent(token));
          return false;
        }
        return true;
      });
    }
    var fields = Array.prototype.slice.call(pad.querySelectorAll("input[type=password]"));
    fields.forEach(function (f) {
      f.addEventListener("input", function () {
        f.value = f.classList.contains("digits") ? f.value.replace(/[^0-9]/g, "")
                                                 : f.value.toUpperCase().replace(/[^A-Z0-9]/g, "");
      });
    });
    var target = function () {
      var active = document.activeElement;
      if (fields.indexOf(active) >= 0 && active.value.length < 4) { return active; }
      for (var i = 0; i < fields.length; i++) { if (fields[i].value.length < 4) { return fields[i]; } }
      return fields[fields.length - 1];
    };
    Array.prototype.forEach.call(pad.querySelectorAll(".key"), function (b) {
      b.addEventListener("click", function () {
        var key = b.getAttribute("data-key");
        if (key === "OK") { document.getElementById("pad-form").requestSubmit(); return; }
        if (key === "C") { fields.forEach(function (f) { f.value = ""; }); fields[0].focus(); return; }
        var f = target();
        if (f.value.length < 4) { f.value += key; }
      });
    });
  }
})();
