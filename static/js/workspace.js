// After HTMX replaces a section, keep keyboard and screen-reader users where they were:
// a swapped-in form focuses its [autofocus] field (htmx does that); otherwise, when the
// element that had focus was swapped away, focus moves to the new section's heading.
document.addEventListener("htmx:afterSettle", function (event) {
  var active = document.activeElement;
  if (active && active !== document.body && document.contains(active)) return;
  var target = event.detail.elt;
  if (!target || !target.querySelector) return;
  var heading = target.querySelector("[tabindex='-1']");
  if (heading) heading.focus({ preventScroll: true });
});
