/**
 * Signing in to the dashboard in a browser test, and moving to a view, without racing the
 * page. After sign-in the page loads the key's rights (`GET /api/me`) and only then sets its
 * first hash (`#/overview`, or `#/tasks` without `read`) and draws that view. A test that
 * navigated as soon as `#app` showed could land between the two: the page's own hash change
 * then replaced the test's, and a reload reopened the overview (seen in CI: the versions and
 * sources views never appeared).
 */
import type { Page } from 'playwright-core';

/** Signs in with `key` at `baseUrl` and waits until the first view (`firstView`) is drawn. */
export async function signIn(page: Page, baseUrl: string, key: string, firstView = '#overview-counts'): Promise<void> {
  await page.goto(`${baseUrl}/`);
  await page.fill('#login-key', key);
  await page.click('#login-form button[type=submit]');
  await page.locator(firstView).waitFor();
}

/** Opens the view at `hash` (e.g. `#/sources`) as a click on a link would, and waits until the page is there. */
export async function openView(page: Page, hash: string): Promise<void> {
  await page.evaluate((h) => {
    window.location.hash = h;
  }, hash);
  await page.waitForFunction((h) => window.location.hash === h, hash);
}
