// Direct-to-bucket uploads for an s3:// target: Uppy's @uppy/aws-s3 (uppy.min.js,
// served from this host) sends the video as an S3 multipart upload. Every S3
// request is presigned by the app (/s3/sign) for this upload's ticket only; after
// a cut connection, "Try again" lists the parts the bucket already has (the app
// answers that one itself, /s3/parts) and sends the rest. When the bucket has it all, /s3/finish checks it and publishes it.
(function () {
  "use strict";

  function post(path, csrf, body) {
    return fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (b) {
        if (!response.ok) {
          var error = new Error(b.error || "failed");
          error.status = response.status;
          throw error;
        }
        return b;
      });
    });
  }

  // o: ticket, partBytes, csrf, onProgress(sent, total), onError(status, code), onSuccess().
  window.reelS3Upload = function (file, o) {
    var uppy = new Uppy.Uppy({autoProceed: false, restrictions: {maxNumberOfFiles: 1}});
    uppy.use(Uppy.AwsS3, {
      shouldUseMultipart: true,
      limit: 1,
      getChunkSize: function () { return o.partBytes; },  // the app's plan; it signs each length
      signRequest: function (request) {
        if (request.method === "GET") {  // ListParts, when resuming: the app answers it
          return {url: "/s3/parts", headers: {"X-CSRF-Token": o.csrf, "X-Upload-Ticket": o.ticket}};
        }
        return post("/s3/sign", o.csrf, {
          ticket: o.ticket,
          method: request.method,
          uploadId: request.uploadId || null,
          partNumber: request.partNumber || null
        });
      }
    });
    // No file name from the phone: the app chooses every key.
    uppy.addFile({name: "video", type: file.type || "application/octet-stream", data: file});
    uppy.on("upload-progress", function (f, p) { o.onProgress(p.bytesUploaded, p.bytesTotal); });
    uppy.on("upload-error", function (f, error) {
      o.onError(error.status || error.statusCode || 0, error.message);
    });
    var started = false, sent = false;
    function finish() {
      post("/s3/finish", o.csrf, {ticket: o.ticket}).then(o.onSuccess, function (error) {
        o.onError(error.status || 0, error.message);
      });
    }
    uppy.on("upload-success", function () { sent = true; finish(); });
    return {
      start: function () {
        if (sent) { finish(); return; }  // the bucket has it all; only the check failed
        if (started) { uppy.retryAll(); return; }
        started = true;
        uppy.upload();
      }
    };
  };
}());
