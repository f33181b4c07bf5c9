/* global window, api */
/**
 * What the signed-in key may do (`GET /api/me`), so the dashboard shows only the buttons the
 * key may use: no Resume or Stop without `operate`. The server checks every call anyway; this
 * only keeps the page from offering what would be refused.
 */
'use strict';

window.ConveyorRoles = (() => {
  let may = {};
  return {
    /** Reads the caller's rights; until then (or if it fails) nothing optional is offered. */
    async load() {
      may = {};
      try {
        may = (await api('GET', '/api/me')).may || {};
      } catch {
        may = {};
      }
      return may;
    },
    clear() {
      may = {};
    },
    /** Whether the key holds `role` (admin holds all). */
    may: (role) => may[role] === true,
  };
})();
