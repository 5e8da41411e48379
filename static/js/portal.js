// Progressive enhancement for the portal; every page works without it.
// Loaded as a file (the Content-Security-Policy forbids inline scripts).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // "Copy" buttons next to a command: shown only when the clipboard API exists.
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    if (!navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      try {
        await navigator.clipboard.writeText(source.textContent.trim());
        button.textContent = "Copied";
      } catch (err) {
        button.textContent = "Select and copy";
      }
    });
  });

  // Ask before destructive actions (revoke access); without JS the form posts directly.
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
});
