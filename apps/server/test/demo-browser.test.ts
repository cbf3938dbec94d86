/**
 * The demo page (GET /, built on @retrotro/client) in a real browser against two real pods
 * over PostgreSQL: two users on two pods see each other, share notes and one timer; then the
 * pod holding page 1's socket is SIGKILLed and page 1 reconnects to the other pod by itself,
 * showing every note exactly once (those posted meanwhile included) and sending the note it
 * queued while down. Needs Debian's chromium at /usr/bin/chromium (driven by
 * playwright-core); without it this test fails, never skips.
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
const offsetsOf = async (page: Page) =>
  (await page.locator('#notes li').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-offset')))).map(Number);
const stateOf = (page: Page) => page.locator('#status').getAttribute('data-state');
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
const wsUrl = (pod: Pod) => `ws://127.0.0.1:${pod.port}/ws`;

async function post(page: Page, text: string): Promise<void> {
  await page.locator('#note').fill(text);
  await page.getByTestId('post').click();
}

describe('demo page in a browser, two pods over postgres (dev mode)', () => {
  let a: Pod;
  let b: Pod;
  let browser: Browser;
  const pageErrors: string[] = [];

  const chromiumMissing = `${CHROMIUM} is missing: this test drives Debian's chromium (apt-get install chromium); it fails, never skips`;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) return; // the test itself fails, below
    const env = { BUS_TYPE: 'postgres', BUS_PREFIX: uniqueBusPrefix('demo'), JWT_SECRET: '', PRESENCE_TTL_MS: '4000' };
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
    await Promise.all([a?.kill(), b?.stop()]);
  });

  /** Opens the page served by `pod`, given `pods` as its WebSocket URLs (in that order). */
  async function openDemo(pod: Pod, pods: Pod[], { slowRetry = false } = {}): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1000, height: 760 } });
    const page = await context.newPage();
    if (slowRetry) {
      // The SDK's backoff is random() * 1 s for the first retry: keep random() in [0.8, 1), so
      // the outage lasts long enough for the other page to post notes meanwhile.
      await page.addInitScript(() => {
        const random = Math.random;
        Math.random = () => 0.8 + 0.2 * random();
      });
    }
    page.on('pageerror', (e) => pageErrors.push(`${pod.port}: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(`${pod.port}: console: ${m.text()} ${m.location().url}`);
    });
    page.on('response', (r) => {
      if (r.status() >= 400) pageErrors.push(`${pod.port}: ${r.request().method()} ${r.url()}: ${r.status()}`);
    });
    const res = await page.goto(pod.url(`/?pods=${encodeURIComponent(pods.map(wsUrl).join(','))}`));
    expect(res?.status()).toBe(200);
    expect(await page.locator('#pods').inputValue()).toBe(pods.map(wsUrl).join(','));
    return page;
  }

  it('serves the SDK it imports as JavaScript, by name only', async () => {
    if (!existsSync(CHROMIUM)) throw new Error(chromiumMissing);
    const sdk = await fetch(a.url('/sdk/index.js'));
    expect(sdk.status).toBe(200);
    expect(sdk.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await sdk.text()).toContain('RetrotroClient');
    for (const path of ['/sdk/', '/sdk/nope.js', '/sdk/index.d.ts', '/sdk/..%2Fmain.js', '/sdk/%2e%2e/main.js', '/sdk/../main.js']) {
      expect((await fetch(a.url(path))).status, path).toBe(404);
    }
  });

  it('two users on two pods share notes and one timer; page 1 survives the SIGKILL of its pod and misses nothing', async () => {
    if (!existsSync(CHROMIUM)) throw new Error(chromiumMissing);
    const roomId = `demo-${Date.now().toString(36)}`;
    const podIdOf = async (pod: Pod) => ((await (await fetch(pod.url('/healthz'))).json()) as { podId: string }).podId;
    const [podA, podB] = await Promise.all([podIdOf(a), podIdOf(b)]);
    expect(podA).not.toBe(podB);

    // Both pages are loaded (HTML and SDK) before pod A goes: each lists both pods, its own first.
    const page1 = await openDemo(a, [a, b], { slowRetry: true });
    const page2 = await openDemo(b, [b, a]);

    // Each page says which pod serves it.
    await waitUntil(
      'pod ids shown',
      async () => (await page1.locator('#pod').textContent())!.includes(podA) && (await page2.locator('#pod').textContent())!.includes(podB),
    );

    // Each picks a name and the same room.
    for (const [page, name] of [
      [page1, 'alice'],
      [page2, 'bob'],
    ] as const) {
      await page.locator('#name').fill(name);
      await page.locator('#room').fill(roomId);
      await page.getByTestId('join').click();
      await waitUntil(`${name} connected`, async () => (await stateOf(page)) === 'open');
    }
    expect(await page1.locator('#socket').textContent()).toBe(wsUrl(a));
    expect(await page2.locator('#socket').textContent()).toBe(wsUrl(b));

    // Each sees the other in the participants list.
    for (const page of [page1, page2]) {
      await waitUntil('both participants listed', async () => (await participantsOf(page)).length === 2);
    }
    expect((await participantsOf(page1)).sort()).toEqual(['alice (you)', 'bob']);
    expect((await participantsOf(page2)).sort()).toEqual(['alice', 'bob (you)']);

    // Page 1 posts a note; page 2 shows it, page 1 too once acknowledged.
    await post(page1, 'hello from pod A <b>not bold</b>');
    await waitUntil('note on page 2', async () => (await notesOf(page2)).length === 1);
    await waitUntil('note acked on page 1', async () => (await notesOf(page1)).length === 1);
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
    const pausedAt = (await timerOf(page1)).text;
    expect((await timerOf(page2)).text).toBe(pausedAt);
    expect(secondsOf(pausedAt)).toBeGreaterThan(240);

    await post(page2, 'before the crash');
    await waitUntil('live note on page 1', async () => (await notesOf(page1)).length === 2);

    // Pod A (page 1's socket; its page is already loaded) is SIGKILLed.
    await a.kill();
    await waitUntil('page 1 reconnecting', async () => (await stateOf(page1)) === 'reconnecting', 5_000);
    // While page 1 is down: it queues a note of its own, page 2 posts three.
    await post(page1, 'queued while down');
    expect(await page1.locator('#pending li').allTextContents()).toEqual(['you: queued while down (sending…)']);
    for (const n of [1, 2, 3]) await post(page2, `while A is down ${n}`);
    await waitUntil('page 2 notes acked', async () => (await notesOf(page2)).length === 5);
    expect(await stateOf(page1), 'page 1 was back before page 2 posted: the outage was too short to test').not.toBe('open');

    // Page 1 reconnects to pod B by itself.
    await waitUntil('page 1 open again', async () => (await stateOf(page1)) === 'open', 15_000);
    expect(await page1.locator('#status').getAttribute('data-history')).toBe('connecting open reconnecting open');
    expect(await page1.locator('#reconnects').textContent()).toBe('1');
    expect(await page1.locator('#socket').textContent()).toBe(wsUrl(b));
    await waitUntil('queued note acked on page 1', async () => (await page1.locator('#pending li').count()) === 0);

    const expected = (me: 'alice' | 'bob') => {
      const [mine, theirs] = me === 'alice' ? ['you', 'bob'] : ['alice', 'you'];
      return [
        `${me === 'alice' ? 'you' : 'alice'}: hello from pod A <b>not bold</b>`,
        `${theirs}: before the crash`,
        `${theirs}: while A is down 1`,
        `${theirs}: while A is down 2`,
        `${theirs}: while A is down 3`,
        `${mine}: queued while down`,
      ];
    };
    await waitUntil('page 2 has the queued note', async () => (await notesOf(page2)).length === 6);
    expect(await notesOf(page1)).toEqual(expected('alice'));
    expect(await notesOf(page2)).toEqual(expected('bob'));
    for (const page of [page1, page2]) {
      const offsets = await offsetsOf(page);
      expect(
        offsets.every((o, i) => Number.isInteger(o) && (i === 0 || o > offsets[i - 1]!)),
        `offsets ${offsets}`,
      ).toBe(true);
    }
    expect(await offsetsOf(page1)).toEqual(await offsetsOf(page2));
    await expect.poll(() => page1.locator('#reset').isHidden()).toBe(true);
    expect(await page1.locator('#reset').getAttribute('data-count')).toBe('0');

    // Live again, both ways; participants and the paused timer as before.
    await post(page2, 'after the recovery');
    await waitUntil('live note after the recovery', async () => (await notesOf(page1)).length === 7);
    expect((await notesOf(page1)).at(-1)).toBe('bob: after the recovery');
    await waitUntil('both still listed', async () => (await participantsOf(page1)).length === 2 && (await participantsOf(page2)).length === 2);
    expect((await participantsOf(page1)).sort()).toEqual(['alice (you)', 'bob']);
    const t = await timerOf(page1);
    expect(t.state).toBe('paused');
    expect(t.text).toBe(pausedAt);
    await page1.screenshot({ path: `${ARTIFACTS}demo-reconnected.png`, fullPage: true });

    // Page 2 leaves (closes): page 1 sees bob go after the grace period.
    await page2.context().close();
    await waitUntil('bob gone from page 1', async () => (await participantsOf(page1)).length === 1);
    expect(await participantsOf(page1)).toEqual(['alice (you)']);
    expect(pageErrors).toEqual([]);
  });
});
