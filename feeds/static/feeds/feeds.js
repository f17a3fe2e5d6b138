// Calendar feeds page: "Copy" buttons next to a feed's address (the address stays selectable
// without JavaScript; the buttons are only shown where the clipboard API is available).
(function () {
  "use strict";
  if (!navigator.clipboard) return;
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var input = document.getElementById(button.dataset.copy);
    var status = button.closest(".feed-url").querySelector(".copy-status");
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(input.value).then(
        function () { status.textContent = "Address copied."; },
        function () { input.select(); status.textContent = "Press Ctrl+C (⌘C) to copy the selected address."; }
      );
    });
  });
  document.querySelectorAll(".feed-url input[readonly]").forEach(function (input) {
    input.addEventListener("focus", function () { input.select(); });
  });
})();
