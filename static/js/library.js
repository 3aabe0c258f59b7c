// The library as people use it: search as you type, one history entry per search, and on
// small screens the filters behind a "Filter" button. Without this script the library is
// a plain form that works the same way, one page per search.
const form = document.getElementById("library-form");
const box = document.getElementById("q");
const FINISHED_AFTER = 1000; // ms without a key press: the search is finished
let pause = null;
let lastFinished = box ? box.value.trim() : "";
let typingEntry = false; // the current history entry is a search still being typed
let filtersOpen = false;

function fromLibrary(element) {
  return Boolean(form && element && (element === form || form.contains(element)));
}

if (form && box) {
  box.addEventListener("input", () => {
    clearTimeout(pause);
    pause = setTimeout(() => htmx.trigger(form, "portal:finished"), FINISHED_AFTER);
  });
  form.addEventListener("submit", () => clearTimeout(pause));

  // Tell the portal whether the person is still typing (the last word is then also a
  // beginning) and whether a finished search has new words (counted in search insights).
  document.addEventListener("htmx:config:request", (event) => {
    const ctx = event.detail.ctx;
    if (!fromLibrary(ctx.sourceElement)) return;
    const typing = ctx.sourceEvent?.type === "input";
    if (typing) {
      ctx.request.headers["Portal-Typing"] = "1";
      return;
    }
    clearTimeout(pause);
    const words = box.value.trim();
    if (ctx.sourceElement === form && words && words !== lastFinished) {
      ctx.request.headers["Portal-New-Search"] = "1";
    }
    if (ctx.sourceElement === form) lastFinished = words;
  });

  // One history entry per search: the first update of a search adds an entry, and the
  // updates while it is typed (and the one that finishes it) replace it. So Back goes to
  // the previous search, not the previous letter.
  document.addEventListener("htmx:before:history:update", (event) => {
    const detail = event.detail;
    if (!fromLibrary(detail.sourceElement)) return;
    const headers = detail.response?.headers ?? detail.response?.raw?.headers;
    const typing = headers?.get?.("Portal-Typing") === "1";
    detail.history.type = typingEntry ? "replace" : "push";
    typingEntry = typing;
    // The address as a person would write it: no empty search, no default order.
    const address = new URL(detail.history.path, location.href);
    if (!address.searchParams.get("q")) address.searchParams.delete("q");
    if (address.searchParams.get("sort") === "relevance") address.searchParams.delete("sort");
    detail.history.path = address.pathname + address.search;
  });
}

// Small screens: the filters wait behind a "Filter" button that says how many are applied.
const wide = window.matchMedia(
  `(min-width: ${getComputedStyle(document.documentElement).getPropertyValue("--govuk-breakpoint-tablet") || "40.0625rem"})`,
);

function arrangeFilters() {
  const button = document.querySelector(".portal-filter-toggle");
  const filters = document.getElementById("library-filters");
  if (!button || !filters) return;
  if (wide.matches) {
    button.hidden = true;
    filters.hidden = false;
    return;
  }
  button.hidden = false;
  button.setAttribute("aria-expanded", String(filtersOpen));
  filters.hidden = !filtersOpen;
}

document.addEventListener("click", (event) => {
  const button = event.target.closest?.(".portal-filter-toggle");
  if (!button) return;
  filtersOpen = !filtersOpen;
  arrangeFilters();
});
document.addEventListener("htmx:after:swap", arrangeFilters);
wide.addEventListener("change", arrangeFilters);
arrangeFilters();
