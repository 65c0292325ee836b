// The contributor upload page: the form goes to /start, then the video in chunks
// over tus (tus-js-client, served from this host), or with an s3:// target as an
// S3 multipart upload straight to the bucket (upload-s3.js). A dropped connection is retried
// automatically a few times; after that "Try again" continues from the last chunk
// the server stored. No file name from the phone is sent.
(function () {
  "use strict";
  var form = document.getElementById("upload");
  var status = document.getElementById("status");
  var progress = document.getElementById("progress");
  var retry = document.getElementById("retry");
  var send = document.getElementById("send");
  var chosen = null;
  var upload = null;

  function message(code) {
    var key = "msg" + code.replace(/_([a-z])/g, function (_, c) { return c.toUpperCase(); })
      .replace(/^./, function (c) { return c.toUpperCase(); });
    return form.dataset[key] || form.dataset.msgFailed;
  }
  function say(text, isError) {
    status.textContent = text;
    status.className = isError ? "error" : "";
  }
  function busy(on) {
    var fields = form.querySelectorAll("input, select, textarea, button[type=submit]");
    for (var i = 0; i < fields.length; i++) { fields[i].disabled = on; }
  }
  function pick(event) {
    chosen = event.target.files && event.target.files[0] ? event.target.files[0] : null;
    document.getElementById("chosen").textContent = chosen ?
      Math.max(1, Math.round(chosen.size / 1048576)) + " MB" : "";
  }
  document.getElementById("video").addEventListener("change", pick);
  document.getElementById("camera").addEventListener("change", pick);

  function base64(buffer) {
    var bytes = new Uint8Array(buffer), text = "";
    for (var i = 0; i < bytes.length; i++) { text += String.fromCharCode(bytes[i]); }
    return btoa(text);
  }
  function codeOf(response) {
    try { var b = JSON.parse(response.getBody()); return b.error || b.detail || "failed"; } catch (e) { return "failed"; }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!chosen) { say(message("no_file"), true); return; }
    if (chosen.size > Number(form.dataset.max)) { say(message("too_large"), true); return; }
    busy(true);
    say(form.dataset.sending, false);
    chosen.slice(0, 189).arrayBuffer().then(function (head) {
      return fetch("/start", {
        method: "POST",
        credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": form.dataset.csrf},
        body: JSON.stringify({
          name: document.getElementById("name").value,
          language: document.getElementById("language").value,
          message: document.getElementById("message").value,
          consent: document.getElementById("consent").checked,
          anonymize: document.getElementById("anonymize").checked,
          website: document.getElementById("website").value,
          size: chosen.size,
          head: base64(head)
        })
      });
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) { throw new Error(body.error || "failed"); }
        (form.dataset.mode === "s3" ? beginS3 : begin)(body.ticket, body.link, body.part);
      });
    }).catch(function (error) {
      busy(false);
      say(message(String(error.message)), true);  // an unknown code reads as "failed"
    });
  });

  function refused(status, code) {
    if (status >= 400 && status < 500 && status !== 409 && status !== 423) {
      say(message(code), true);  // refused: trying again would not help
      busy(false);
      return;
    }
    say(message("failed"), true);
    retry.hidden = false;
  }
  function finished(link) {
    progress.value = 100;
    say("", false);
    var anchor = document.getElementById("link");
    link += "?lang=" + encodeURIComponent(document.documentElement.lang);  // the page's language
    anchor.href = link;
    anchor.textContent = location.origin + link;
    document.getElementById("done").hidden = false;
    send.hidden = true;
  }
  function showProgress(sent, total) {
    progress.value = Math.floor((sent / total) * 100);
    say(form.dataset.sending + " " + progress.value + "%", false);
  }

  // An s3:// target: the parts go straight to the bucket (upload-s3.js, Uppy).
  function beginS3(ticket, link, part) {
    progress.hidden = false;
    upload = window.reelS3Upload(chosen, {
      ticket: ticket, partBytes: part, csrf: form.dataset.csrf,
      onProgress: showProgress,
      onError: refused,
      onSuccess: function () { finished(link); }
    });
    upload.start();
  }

  function begin(ticket, link) {
    progress.hidden = false;
    upload = new tus.Upload(chosen, {
      endpoint: "/files/",
      chunkSize: Number(form.dataset.chunk),
      retryDelays: [500, 1500, 3000],
      storeFingerprintForResuming: false,
      headers: {"X-CSRF-Token": form.dataset.csrf},
      metadata: {ticket: ticket, filename: "video", filetype: chosen.type || "video/unknown"},
      onProgress: showProgress,
      onError: function (error) {
        var response = error.originalResponse;
        refused(response ? response.getStatus() : 0, response ? codeOf(response) : "failed");
      },
      onSuccess: function () { finished(link); }
    });
    upload.start();
  }

  retry.addEventListener("click", function () {
    retry.hidden = true;
    say(form.dataset.sending, false);
    upload.start();  // asks what the server (or the bucket) has and sends the rest
  });
}());
