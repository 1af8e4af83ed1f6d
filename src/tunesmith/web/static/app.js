// tunesmith's pages: htmx does the interaction; this file only routes error answers to the
// flash area (htmx leaves 4xx/5xx answers unswapped by default).
(function () {
  "use strict";
  if (!window.htmx) return;
  document.body.addEventListener("htmx:beforeSwap", function (evt) {
    var status = evt.detail.xhr.status;
    if (status >= 400) {
      evt.detail.shouldSwap = true;
      evt.detail.isError = false;
      evt.detail.target = document.getElementById("flash");
      evt.detail.swapOverride = "innerHTML";  // the form's own swap (outerHTML) would replace the flash area
    } else {
      document.getElementById("flash").innerHTML = "";
    }
  });
  document.body.addEventListener("htmx:sendError", function () {
    var flash = document.getElementById("flash");
    flash.innerHTML = "";
    var box = document.createElement("div");
    box.className = "error-box";
    box.textContent = "The app did not answer: is tunesmith ui still running?";
    flash.appendChild(box);
  });
})();
