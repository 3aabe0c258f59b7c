// Start GOV.UK Frontend's components (skip link, service navigation, notification banners).
import { initAll } from "../vendor/govuk-frontend/govuk-frontend.min.js";

initAll();

// The annual report's print button (hidden without JavaScript, when the browser's menu does it).
for (const button of document.querySelectorAll("[data-portal-print]")) {
  button.hidden = false;
  button.addEventListener("click", () => window.print());
}

// A wide table's scrolling region (.portal-table-wrap) is a tab stop so that it scrolls by
// keyboard; while the table fits, the stop is dropped so Tab does not land on nothing.
// Without JavaScript it always stays, which is harmless.
if ("ResizeObserver" in window) {
  const regions = document.querySelectorAll(".portal-table-wrap");
  const observer = new ResizeObserver((entries) => {
    for (const { target } of entries) {
      if (target.scrollWidth > target.clientWidth) target.setAttribute("tabindex", "0");
      else target.removeAttribute("tabindex");
    }
  });
  for (const region of regions) observer.observe(region);
}
