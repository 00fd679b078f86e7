// Progressive enhancement only: the enroll form shows an upload progress bar, then the server's
// report. Without JavaScript the same form posts normally and the page shows the same report.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("enroll-form");
  if (!form || !window.XMLHttpRequest) return;
  const bar = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const request = new XMLHttpRequest();
    request.open("POST", form.action);
    bar.hidden = false;
    request.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) {
        bar.value = Math.round((e.loaded / e.total) * 100);
        status.textContent = "Uploading: " + bar.value + " %";
      }
    });
    request.upload.addEventListener("load", () => { status.textContent = "Uploaded; dripd is checking and enrolling the rows…"; });
    request.addEventListener("load", () => {
      // The server answers with the whole page (report included): show it as a normal navigation would.
      const page = new DOMParser().parseFromString(request.responseText, "text/html");
      document.title = page.title;
      document.body.replaceWith(page.body);
    });
    request.addEventListener("error", () => { status.textContent = "The upload failed: check the connection and try again."; });
    request.send(new FormData(form));
  });
});
