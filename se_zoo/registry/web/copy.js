// se-zoo registry pages: a "Copy" button on every code snippet marked data-copy (the pages' only script).
"use strict";
(function () {
  function fallback(text) {
    // http pages on another host than localhost have no navigator.clipboard: copy a selected textarea
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "copy-buffer";
    document.body.appendChild(area);
    area.select();
    var done = false;
    try { done = document.execCommand("copy"); } catch (e) { done = false; }
    document.body.removeChild(area);
    return done ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }
  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return fallback(text); });
    }
    return fallback(text);
  }
  function flash(button, label) {
    button.textContent = label;
    setTimeout(function () { button.textContent = "Copy"; }, 1500);
  }
  document.querySelectorAll("pre[data-copy]").forEach(function (pre) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy: " + (pre.getAttribute("data-copy") || "snippet"));
    button.addEventListener("click", function () {
      copy(pre.textContent).then(function () { flash(button, "Copied"); },
                                 function () { flash(button, "Press Ctrl+C"); });
    });
    pre.parentNode.insertBefore(button, pre);
  });
})();
