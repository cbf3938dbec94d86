/**
 * The demo page (GET /) in a real browser against two real pods over PostgreSQL: two users
 * on two pods see each other, share notes and one timer. Needs Debian's chromium at
 * /usr/bin/chromium (driven by playwright-core); without it this test fails, never skips.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPod, uniqueBusPrefix, waitUntil, type Pod } from './support/pods.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));

const participantsOf = (page: Page) => page.locator('#participants li').allTextContents();
const notesOf = (page: Page) => page.locator('#notes li').allTextContents();
const timerOf = async (page: Page) => ({
  text: (await page.locator('#timer').textContent()) ?? '',
  state: await page.locator('#timer').getAttribute('data-state'),
  phase: (await page.locator('#phase').textContent()) ?? '',
});
const secondsOf = (mmss: string) => {
  const m = /^(\d\d):(\d\d)$/.exec(mmss);
  if (!m) throw new Error(`not a mm:ss time: ${JSON.stringify(mmss)}`);
  return Number(m[1]) * 60 + Number(m[2]);
};

describe('demo page in a browser, two pods over postgres (dev mode)', () => {
  let a: Pod;
  let b: Pod;
  let browser: Browser;
  const pageErrors: string[] = [];

  const chromiumMissing = `${CHROMIUM} is missing: this test drives Debian's chromium (apt-get install chromium); it fails, never skips`;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) return; // the test itself fails, below
    const env = { BUS_TYPE: 'postgres', BUS_PREFIX: uniqueBusPrefix('demo'), JWT_SECRET: '' };
    [a, b, browser] = await Promise.all([
      startPod(env),
      startPod(env),
      chromium.launch({
        executablePath: CHROMIUM,
        args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-component-update', '--disable-sync', '--no-first-run'],
      }),
    ]);
  });
  afterAll(async () => {
    await browser?.close();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  async function openDemo(pod: Pod): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(`${pod.port}: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(`${pod.port}: console: ${m.text()} ${m.location().url}`);
    });
    page.on('response', (r) => {
      if (r.status() >= 400) pageErrors.push(`${pod.port}: ${r.request().method()} ${r.url()}: ${r.status()}`);
    });
    const res = await page.goto(pod.url('/'));
    expect(res?.status()).toBe(200);
    return page;
  }

  it('two users on two pods see each other, share notes and the same running timer', async () => {
    if (!existsSync(CHROMIUM)) throw new Error(chromiumMissing);
    const roomId = `demo-${Date.now().toString(36)}`;
    const podIdOf = async (pod: Pod) => ((await (await fetch(pod.url('/healthz'))).json()) as { podId: string }).podId;
    const [podA, podB] = await Promise.all([podIdOf(a), podIdOf(b)]);
    expect(podA).not.toBe(podB);

    const page1 = await openDemo(a);
    const page2 = await openDemo(b);

    // Each page says which pod serves it.
    await waitUntil('pod ids shown', async () =>
      (await page1.locator('#pod').textContent())!.includes(podA) && (await page2.locator('#pod').textContent())!.includes(podB),
    );

    // Each picks a name and the same room.
    for (const [page, name] of [[page1, 'alice'], [page2, 'bob']] as const) {
      await page.locator('#name').fill(name);
      await page.locator('#room').fill(roomId);
      await page.getByTestId('join').click();
      await waitUntil(`${name} connected`, async () => (await page.locator('#status').textContent()) === 'connected');
    }

    // Each sees the other in the participants list.
    for (const page of [page1, page2]) {
      await waitUntil('both participants listed', async () => (await participantsOf(page)).length === 2);
    }
    expect((await participantsOf(page1)).sort()).toEqual(['alice (you)', 'bob']);
    expect((await participantsOf(page2)).sort()).toEqual(['alice', 'bob (you)']);

    // Page 1 posts a note; page 2 shows it.
    await page1.locator('#note').fill('hello from pod A <b>not bold</b>');
    await page1.getByTestId('post').click();
    await waitUntil('note on page 2', async () => (await notesOf(page2)).length === 1);
    expect(await notesOf(page2)).toEqual(['alice: hello from pod A <b>not bold</b>']);
    expect(await notesOf(page1)).toEqual(['you: hello from pod A <b>not bold</b>']);
    expect(await page2.locator('#notes b').count()).toBe(0); // shown as text, not markup

    // Page 2 starts the timer (5 minutes); both pages show the same running timer.
    await page2.locator('#minutes').fill('5');
    await page2.locator('button[data-cmd="start"]').click();
    for (const page of [page1, page2]) {
      await waitUntil('timer counting down', async () => /^04:5\d$/.test((await timerOf(page)).text));
      const t = await timerOf(page);
      expect(t.state).toBe('running');
      expect(t.phase).toBe('(discussion)');
    }
    const [t1, t2] = [await timerOf(page1), await timerOf(page2)];
    expect(Math.abs(secondsOf(t1.text) - secondsOf(t2.text))).toBeLessThanOrEqual(1);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page1.screenshot({ path: `${ARTIFACTS}demo-pod-a.png`, fullPage: true });
    await page2.screenshot({ path: `${ARTIFACTS}demo-pod-b.png`, fullPage: true });

    // Page 1 (the other pod) pauses it: both show the same paused time.
    await page1.locator('button[data-cmd="timer_pause"]').click();
    for (const page of [page1, page2]) {
      await waitUntil('timer paused', async () => (await timerOf(page)).state === 'paused');
      expect((await timerOf(page)).phase).toBe('(discussion, paused)');
    }
    expect((await timerOf(page1)).text).toBe((await timerOf(page2)).text);
    expect(secondsOf((await timerOf(page1)).text)).toBeGreaterThan(240);

    // Page 2 leaves (closes): page 1 sees bob go after the grace period.
    await page2.context().close();
    await waitUntil('bob gone from page 1', async () => (await participantsOf(page1)).length === 1);
    expect(await participantsOf(page1)).toEqual(['alice (you)']);
    expect(pageErrors).toEqual([]);
  });
});
