// Mark the page as script-enabled before it paints, as GOV.UK Frontend expects
// (kept out of the HTML because the Content-Security-Policy forbids inline script).
document.body.className += " js-enabled" +
  ("noModule" in HTMLScriptElement.prototype ? " govuk-frontend-supported" : "");
