// Start GOV.UK Frontend's components (skip link, service navigation, notification banners).
import { initAll } from "../vendor/govuk-frontend/govuk-frontend.min.js";

initAll();
