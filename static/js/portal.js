// Start GOV.UK Frontend's components (skip link, service navigation, notification banners).
import { initAll } from "../vendor/govuk-frontend/govuk-frontend.min.js";

initAll();

// The annual report's print button (hidden without JavaScript, when the browser's menu does it).
for (const button of document.querySelectorAll("[data-portal-print]")) {
  button.hidden = false;
  button.addEventListener("click", () => window.print());
}
