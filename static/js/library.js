// The library as people use it: search as you type, one history entry per search, and on
// small screens the filters behind a "Filter" button. Without this script the library is
// a plain form that works the same way, one page per search.
const form = document.getElementById("library-form");
const box = document.getElementById("q");
const FINISHED_AFTER = 1000; // ms without a key press: the search is finished
let pause = null;
let lastFinished = box ? box.value.trim() : "";
let typingEntry = false; // the current history entry is a search still being typed
let kind = "other"; // what started the latest update: typing, finishing the words, or other
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
  // beginning) and whether a finished search has new words (for the search insights).
  document.addEventListener("htmx:config:request", (event) => {
    const ctx = event.detail.ctx;
    if (!fromLibrary(ctx.sourceElement)) return;
    const type = ctx.sourceEvent?.type;
    if (type === "input") {
      kind = "typing";
      ctx.request.headers["Portal-Typing"] = "1";
      return;
    }
    clearTimeout(pause);
    // A pause, Enter or leaving the box finishes the words typed; a filter, the order, a
    // tag or a page is a new search of its own.
    const finishing =
      type === "portal:finished" || type === "submit" || ctx.sourceEvent?.target === box;
    kind = finishing ? "finish" : "other";
    // A search is counted when the person presses Enter (or Search) or narrows it; one
    // finished by a pause only if a result is then opened (its links carry it), so words
    // typed on the way to others (the start of a name) are never kept.
    const words = box.value.trim();
    if (ctx.sourceElement !== form || !words || words === lastFinished) return;
    if (type === "portal:finished") {
      ctx.request.headers["Portal-Paused"] = "1";
    } else {
      ctx.request.headers["Portal-New-Search"] = "1";
      lastFinished = words;
    }
  });

  // One history entry per search: the first update of a search adds an entry, and the
  // updates while it is typed (and the one that finishes it) replace it; a filter, the
  // order, a tag or a page adds its own. So Back goes to the previous search, not the
  // previous letter.
  document.addEventListener("htmx:before:history:update", (event) => {
    const detail = event.detail;
    if (!fromLibrary(detail.sourceElement)) return;
    const here = location.pathname + location.search;
    detail.history.type = typingEntry && kind !== "other" ? "replace" : "push";
    typingEntry = kind === "typing";
    // The address as a person would write it: no empty search, no default order.
    const address = new URL(detail.history.path, location.href);
    if (!address.searchParams.get("q")) address.searchParams.delete("q");
    if (address.searchParams.get("sort") === "relevance") address.searchParams.delete("sort");
    detail.history.path = address.pathname + address.search;
    if (detail.history.path === here) detail.history.type = "replace"; // the same search again
  });
}

// Small screens: the filters wait behind a "Filter" button that says how many are applied.
const wide = window.matchMedia(
  `(min-width: ${getComputedStyle(document.documentElement).getPropertyValue("--govuk-breakpoint-tablet") || "40.0625rem"})`,
);

function arrangeFilters() {
  const button = document.querySelector(".portal-filter-toggle");
  const filters = document.getElementById("library-filters");
  const back = document.querySelector(".portal-show-results");
  if (!button || !filters) return;
  if (wide.matches) {
    button.hidden = true;
    filters.hidden = false;
    if (back) back.hidden = true;
    return;
  }
  button.hidden = false;
  button.setAttribute("aria-expanded", String(filtersOpen));
  filters.hidden = !filtersOpen;
  if (back) back.hidden = !filtersOpen;
}

function focusCount() {
  const count = document.querySelector(".portal-result-count");
  if (count) {
    count.focus();
    count.scrollIntoView({ block: "nearest" });
  }
}

document.addEventListener("click", (event) => {
  if (event.target.closest?.(".portal-filter-toggle")) {
    filtersOpen = !filtersOpen;
    arrangeFilters();
  } else if (event.target.closest?.(".portal-show-results")) {
    filtersOpen = false;
    arrangeFilters();
    focusCount();
  }
});
document.addEventListener("htmx:after:swap", () => {
  arrangeFilters();
  // A link that was followed (a filter's tag, a page) is gone: go on from the count.
  if (document.activeElement === document.body || !document.activeElement) focusCount();
});
wide.addEventListener("change", arrangeFilters);
arrangeFilters();
