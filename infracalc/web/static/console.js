// What every page does once loaded: the navigation menu open on wide screens (a disclosure on narrow
// ones, so that it does not fill a phone's first screen), and the focus on what a form sent back
// (its error summary, a warning to confirm, a notice), so that a keyboard or screen-reader user
// starts there.
"use strict";

(function () {
  document.documentElement.classList.add("js");
  const menu = document.getElementById("menu");
  if (menu) {
    const wide = window.matchMedia("(min-width: 60rem)");
    const follow = function () {
      menu.open = wide.matches;
    };
    follow();
    wide.addEventListener("change", follow);
  }
  const target = document.querySelector(".error-summary, #confirm-outside, #notice, #consequences");
  if (target) {
    target.focus();
  }
})();
