// Drives Reprise's dashboard in headless Chromium (the system's, through playwright-core) against
// a host that dashboard_browser_test.go serves with a few instances. Each step prints
// "ok N - what"; the last line is "OK <n> steps". Any failure exits 1 after a screenshot and the
// page's HTML are written to ARTIFACTS_DIR. Waits are Playwright's own (locators, waitForFunction),
// never fixed sleeps.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this through go test -run TestDashboardInBrowser`);
  return v;
};
const URL_ = env('DASHBOARD_URL');
const KEY = env('MASTER_KEY');
const ART = env('ARTIFACTS_DIR');
const HELLO = env('HELLO_ID');
const FAILED = env('FAILED_ID');
const WAITING = env('WAITING_ID');
const PARENT = env('PARENT_ID');
const CHILD = env('CHILD_ID');
const TIMEOUT = 15_000;
// The key of one counter (dashboard_entities_test.go's xssEntityKey): markup the page must show as text.
const XSS_KEY = '<img src=x onerror=alert(1)>';

mkdirSync(ART, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
// A zone without summer time, so that local and UTC times differ by a known 9 hours.
const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light', timezoneId: 'Asia/Tokyo' });
context.setDefaultTimeout(TIMEOUT);
const page = await context.newPage();

// Console errors and uncaught exceptions (a CSP violation shows up as one) fail the run.
const pageErrors = [];
page.on('pageerror', (err) => pageErrors.push(`uncaught: ${err.message}`));
page.on('console', (msg) => {
  if (msg.type() !== 'error') return;
  const text = msg.text();
  // Chromium logs every 4xx as a failed load; the API's answers (401 before the key, 404 after a
  // purge, 409 on purpose) are expected, and the page's own files are checked below.
  if (/^Failed to load resource/.test(text)) return;
  pageErrors.push(`console: ${text}`);
});
// A key of markup that ran would show as a dialog (alert): it must never.
page.on('dialog', async (dlg) => {
  pageErrors.push(`dialog: ${dlg.type()} ${dlg.message()}`);
  await dlg.dismiss().catch(() => {});
});
page.on('response', (resp) => {
  const path = new URL(resp.url()).pathname;
  const data = path.startsWith('/dashboard/api/') || path.startsWith('/runtime/webhooks/durabletask/');
  if (!data && resp.status() >= 400) pageErrors.push(`${resp.status()} for ${resp.url()}`);
});

let n = 0;
async function step(what, fn) {
  try {
    await fn();
  } catch (err) {
    const name = `failure-step-${n + 1}`;
    await page.screenshot({ path: join(ART, `${name}.png`), fullPage: true }).catch(() => {});
    writeFileSync(join(ART, `${name}.html`), await page.content().catch(() => ''));
    console.log(`not ok ${n + 1} - ${what}\n  ${String(err.stack || err).split('\n').join('\n  ')}`);
    if (pageErrors.length) console.log(`  page errors:\n  ${pageErrors.join('\n  ')}`);
    await browser.close();
    process.exit(1);
  }
  n++;
  console.log(`ok ${n} - ${what}`);
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

const tid = (id) => `[data-testid="${id}"]`;
const rows = () => page.locator(tid('instance-row'));

// waitRows waits until the table lists exactly these instance IDs (in any order).
async function waitRows(ids) {
  const want = [...ids].sort();
  await page.waitForFunction((want) => {
    const got = [...document.querySelectorAll('[data-testid="instance-row"]')].map((r) => r.dataset.id).sort();
    return JSON.stringify(got) === JSON.stringify(want);
  }, want).catch(async (err) => {
    const got = await rows().evaluateAll((rs) => rs.map((r) => r.dataset.id));
    throw new Error(`rows: want ${JSON.stringify(want)}, have ${JSON.stringify(got)} (${err.message})`);
  });
}

async function waitCount(selector, want) {
  await page.waitForFunction(([sel, want]) => document.querySelectorAll(sel).length === want, [selector, want])
    .catch(async () => {
      throw new Error(`${selector}: want ${want} elements, have ${await page.locator(selector).count()}`);
    });
}

async function openInstance(id) {
  await page.goto(`${URL_}#/instances/${encodeURIComponent(id)}`);
  await page.locator(tid('instance-id')).filter({ hasText: id }).waitFor();
  await page.locator(tid('instance-name')).filter({ hasText: /\S/ }).waitFor();
}

const ALL = [HELLO, 'hello-2', FAILED, WAITING, PARENT, CHILD];
// The instances the list shows now: steps below add (live-1, extra-1) and purge (HELLO).
const known = new Set(ALL);
const KNOWN = () => [...known];

await step('the page asks for the key, refuses a wrong one and loads the list with the master key', async () => {
  const resp = await page.goto(URL_);
  assert(resp.status() === 200, `GET ${URL_}: ${resp.status()}`);
  await page.locator(tid('key-dialog')).waitFor({ state: 'visible' });
  // The host says where its master key comes from (here: the app's code).
  await page.locator(tid('key-help')).filter({ hasText: 'WithKeys' }).waitFor();
  await page.screenshot({ path: join(ART, 'dashboard-key-prompt.png') });
  await page.locator(tid('key-input')).fill('not-the-key');
  await page.locator(tid('key-submit')).click();
  await page.locator(tid('key-error')).filter({ hasText: 'refused' }).waitFor();
  await page.locator(tid('key-input')).fill(KEY);
  await page.locator(tid('key-submit')).click();
  await page.locator(tid('key-dialog')).waitFor({ state: 'hidden' });
  await waitRows(ALL);
  await page.locator(tid('sign-out')).waitFor({ state: 'visible' });
});

await step('the counts per status match the instances', async () => {
  const count = async (s) => page.locator(tid(`count-${s}`)).locator('.count-n').textContent();
  await page.locator(tid('count-all')).filter({ hasText: '6' }).waitFor();
  assert(await count('Completed') === '4', `Completed: ${await count('Completed')}`);
  assert(await count('Failed') === '1', `Failed: ${await count('Failed')}`);
  assert(await count('Running') === '1', `Running: ${await count('Running')}`);
});

await step('the chart of the last minutes shows throughput, backlog and failures from the host\'s metrics', async () => {
  for (const k of ['throughput', 'backlog', 'failures']) {
    const spark = page.locator(tid(`spark-${k}`));
    await spark.waitFor(); // a flat line (no backlog) has no height, so the figure is what shows
    assert(await spark.locator('svg polyline').count() === 1, `${k}: no line`);
    assert(Number(await spark.getAttribute('data-points')) >= 1, `${k}: no sample`);
  }
  // The sample after the first holds the hello sequences and the failure that finished before.
  await page.waitForFunction(() => {
    const max = (k) => document.querySelector(`[data-testid="spark-${k}"] svg`)?.getAttribute('aria-label') ?? '';
    return !/at most 0(\.0)?\/s$/.test(max('throughput')) && !/at most 0(\.0)?\/s$/.test(max('failures'));
  }, null, { timeout: 20_000 });
});

await step('the filters fit on one line; filtering by status Failed shows only the failed instance, and the filter is in the URL', async () => {
  const box = await page.locator(tid('filters')).boundingBox();
  assert(box.height < 60, `the filter panel is ${box.height}px high at 1280px wide, want one line`);
  await page.locator(tid('filter-status')).locator('summary').click();
  await page.locator(tid('filter-status-Failed')).check();
  await waitRows([FAILED]);
  assert(page.url().includes('status=Failed'), `URL without the filter: ${page.url()}`);
  assert(await page.locator(tid('filter-status-Failed')).isChecked(), 'the Failed box is not checked after the reload of the view');
  await page.locator(tid('filter-status-text')).filter({ hasText: 'Failed' }).waitFor();
  await page.screenshot({ path: join(ART, 'dashboard-status-menu.png') });
  const filtered = await page.locator(tid('filters')).boundingBox();
  assert(filtered.height < 60, `with a status chosen the filter panel is ${filtered.height}px high, want one line`);
  await page.locator('h1').click(); // a click elsewhere closes the status menu
  await page.locator(tid('filter-status-Failed')).waitFor({ state: 'hidden' });
});

await step('the back button restores the unfiltered list; a status count link filters too', async () => {
  await page.goBack();
  await waitRows(ALL);
  await page.locator(tid('count-Running')).click();
  await waitRows([WAITING]);
  assert(page.url().includes('status=Running'), `URL: ${page.url()}`);
  await page.locator(tid('filter-clear')).click();
  await waitRows(ALL);
});

await step('the list has custom status and duration columns', async () => {
  await page.goto(URL_);
  await waitRows(ALL);
  const row = (id) => page.locator(`[data-testid="instance-row"][data-id="${id}"]`);
  await row(WAITING).locator(tid('custom-status-cell')).filter({ hasText: '{"stage":"waiting for approval"}' }).waitFor();
  assert(await row(HELLO).locator(tid('custom-status-cell')).count() === 0, 'a custom status shown for an instance without one');
  const waiting = await row(WAITING).locator(tid('duration-cell')).textContent();
  const done = await row(HELLO).locator(tid('duration-cell')).textContent();
  assert(/\d.* so far$/.test(waiting), `running instance's duration: ${waiting}`);
  assert(/^(<1 ms|\d+(\.\d+)? m?s)$/.test(done), `completed instance's duration: ${done}`);
  await page.screenshot({ path: join(ART, 'dashboard-list-columns.png') });
});

await step('filtering by orchestrator name shows only its instances; a shared URL opens filtered', async () => {
  await page.locator(tid('filter-name')).selectOption('hello_sequence');
  await waitRows([HELLO, 'hello-2', CHILD]);
  await page.goto(`${URL_}#/?name=wait_for_approval`);
  await waitRows([WAITING]);
  assert(await page.locator(tid('filter-name')).inputValue() === 'wait_for_approval', 'the select does not show the name filter');
  await page.goto(`${URL_}#/?prefix=hello-`);
  await waitRows([HELLO, 'hello-2']);
});

await step('the list is newest first; Oldest first reverses it, and the order is in the URL', async () => {
  const ids = async () => rows().evaluateAll((rs) => rs.map((r) => r.dataset.id));
  await page.goto(URL_);
  await waitRows(ALL);
  assert(await page.locator(tid('filter-order')).inputValue() === 'newest', 'the order select does not default to newest first');
  const newest = await ids();
  await page.locator(tid('filter-order')).selectOption('oldest');
  await page.waitForFunction((want) => JSON.stringify([...document.querySelectorAll('[data-testid="instance-row"]')]
    .map((r) => r.dataset.id)) === JSON.stringify(want), [...newest].reverse())
    .catch(async (err) => { throw new Error(`oldest first: ${JSON.stringify(await ids())}, want ${JSON.stringify([...newest].reverse())} (${err.message})`); });
  assert(page.url().includes('order=oldest'), `URL without the order: ${page.url()}`);
});

await step('paging: Next and Previous walk the pages; live refresh keeps the page', async () => {
  await page.goto(`${URL_}#/?top=2`);
  await waitCount(tid('instance-row'), 2);
  const ids = async () => rows().evaluateAll((rs) => rs.map((r) => r.dataset.id));
  const page1 = await ids();
  assert(await page.locator(tid('prev')).isDisabled(), 'Previous is enabled on page 1');
  await page.locator(tid('next')).click();
  await page.locator(tid('page-no')).filter({ hasText: 'Page 2' }).waitFor();
  await page.waitForFunction((p1) => {
    const got = [...document.querySelectorAll('[data-testid="instance-row"]')].map((r) => r.dataset.id);
    return got.length === 2 && !got.some((id) => p1.includes(id));
  }, page1);
  const page2 = await ids();
  await page.locator(tid('next')).click();
  await page.locator(tid('page-no')).filter({ hasText: 'Page 3' }).waitFor();
  await page.waitForFunction(() => document.querySelector('[data-testid="next"]').disabled);
  await page.locator(tid('prev')).click();
  await page.locator(tid('page-no')).filter({ hasText: 'Page 2' }).waitFor();
  await waitRows(page2);
  // The next live refresh asks for page 2 again (its token), and the page stays there.
  await page.waitForResponse((r) => r.url().includes('/dashboard/api/instances?') && r.url().includes('token='));
  await waitRows(page2);
  assert((await page.locator(tid('page-no')).textContent()) === 'Page 2', 'the refresh moved the page');
  assert(await page.locator(tid('filter-top')).inputValue() === '2', 'the page size select does not show 2');
});

await step('live refresh shows a new instance and its completion without a reload', async () => {
  await page.goto(`${URL_}#/?name=wait_for_approval`);
  await waitRows([WAITING]);
  const call = (method, path, body) => page.evaluate(async ([method, path, body, key]) => {
    const r = await fetch(`/runtime/webhooks/durabletask/${path}`,
      { method, headers: { 'x-functions-key': key, 'Content-Type': 'application/json' }, body });
    return r.status;
  }, [method, path, body, KEY]);
  assert(await call('POST', 'orchestrators/wait_for_approval/live-1', 'null') === 202, 'start live-1');
  known.add('live-1');
  await waitRows([WAITING, 'live-1']);
  await page.locator('[data-testid="instance-row"][data-id="live-1"][data-status="Running"]').waitFor();
  assert(await call('POST', 'instances/live-1/raiseEvent/approval', '"yes"') === 202, 'raise approval to live-1');
  await page.locator('[data-testid="instance-row"][data-id="live-1"][data-status="Completed"]').waitFor();
});

await step('a completed hello sequence shows exactly 3 activity bars and its output', async () => {
  await openInstance(HELLO);
  await page.locator(tid('instance-status')).filter({ hasText: 'Completed' }).waitFor();
  await waitCount(tid('span-activity'), 3);
  await waitCount(tid('span-timer'), 0);
  await waitCount(tid('span-suborchestration'), 0);
  const out = await page.locator(tid('output')).textContent();
  assert(out.includes('Hello Tokyo!') && out.includes('Hello London!'), `output: ${out}`);
  const labels = await page.locator('[data-testid="timeline-row"][data-kind="activity"] .tl-label').allTextContents();
  assert(labels.every((l) => /say_hello/.test(l) && /\d/.test(l)), `activity labels without name or duration: ${labels}`);
  const inputs = await page.locator(tid('span-input')).allTextContents();
  assert(JSON.stringify(inputs.map((i) => i.trim())) === JSON.stringify(['"Tokyo"', '"Seattle"', '"London"']),
    `activity inputs: ${JSON.stringify(inputs)}, want "Tokyo", "Seattle", "London" in order`);
  await page.screenshot({ path: join(ART, 'dashboard-instance-light.png'), fullPage: true });
});

await step('the history table lists every event by time and name; a bar\'s input opens its row', async () => {
  const types = await page.locator(tid('history-row')).evaluateAll((rs) => rs.map((r) => r.dataset.type));
  const want = ['ExecutionStarted', 'TaskScheduled', 'TaskCompleted', 'TaskScheduled', 'TaskCompleted', 'TaskScheduled', 'TaskCompleted', 'ExecutionCompleted'];
  assert(JSON.stringify(types) === JSON.stringify(want), `history rows ${JSON.stringify(types)}, want ${JSON.stringify(want)}`);
  const completed = page.locator('[data-testid="history-row"][data-type="TaskCompleted"]').first();
  const cells = await completed.locator('td').allTextContents();
  assert(cells[3] === 'say_hello' && /Hello Tokyo!/.test(cells[4]) && /#0, after/.test(cells[4]), `TaskCompleted row: ${JSON.stringify(cells)}`);
  assert(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+/.test(cells[2]), `time cell: ${cells[2]}`);
  await page.locator(tid('span-input')).nth(1).click();
  const hl = page.locator('[data-testid="history-row"].hl');
  await hl.waitFor();
  assert(await hl.getAttribute('data-type') === 'TaskScheduled' && /Seattle/.test(await hl.textContent()), `highlighted row: ${await hl.textContent()}`);
  assert(await hl.isVisible(), 'the highlighted history row is not on screen');
  await page.locator(tid('history-table')).screenshot({ path: join(ART, 'dashboard-history-table.png') });
});

await step('times show their zone; the UTC toggle switches every time and is remembered', async () => {
  const created = async () => page.locator('#i-created time').textContent();
  const local = await created();
  assert(/ GMT\+9$/.test(local), `created time in Tokyo: ${local}`);
  assert(/GMT\+9/.test(await page.locator(tid('tz-toggle')).textContent()), 'the toggle does not name the local zone');
  await page.locator(tid('tz-toggle')).click();
  await page.locator('#i-created time').filter({ hasText: / UTC$/ }).waitFor();
  const utc = await created();
  const hour = (s) => Number(s.slice(11, 13));
  assert((hour(utc) + 9) % 24 === hour(local), `UTC ${utc} is not 9 hours before ${local}`);
  assert(/\(UTC\)/.test(await page.locator(tid('history-table')).locator('thead').textContent()), 'the history table does not say UTC');
  await page.reload();
  await page.locator('#i-created time').filter({ hasText: / UTC$/ }).waitFor();
  await page.locator(tid('tz-toggle')).click();
  await page.locator('#i-created time').filter({ hasText: / GMT\+9$/ }).waitFor();
});

await step('the failed instance shows its failure message and type', async () => {
  await openInstance(FAILED);
  await page.locator(tid('instance-status')).filter({ hasText: 'Failed' }).waitFor();
  await page.locator(tid('failure-message')).filter({ hasText: 'the warp core breached' }).first().waitFor();
  await waitCount('[data-testid="span-activity"][data-state="failed"]', 1);
  await page.locator(tid('action-rewind')).waitFor();
});

await step('the parent shows its event timeout, two ship bars told apart by their struct inputs and a sub-orchestration bar linking to the child, which links back', async () => {
  await openInstance(PARENT);
  await waitCount(tid('span-timer'), 1);
  await waitCount(tid('span-suborchestration'), 1);
  await waitCount(tid('span-activity'), 2);
  const timer = await page.locator('[data-testid="timeline-row"][data-kind="timer"] .tl-label').textContent();
  assert(/timeout of go/.test(timer) && /timed out/.test(timer), `timeout timer label: ${timer}`);
  const ships = (await page.locator('[data-testid="timeline-row"][data-kind="activity"]').locator(tid('span-input')).allTextContents()).map((t) => t.trim());
  assert(ships.length === 2 && ships[0] !== ships[1] && /customer: "acme"/.test(ships[0]) && /customer: "initech"/.test(ships[1]),
    `ship inputs: ${JSON.stringify(ships)}, want two summaries naming the customers`);
  await page.locator('[data-testid="history-row"][data-type="TimerCreated"]').filter({ hasText: 'the timeout of the wait for event go' }).waitFor();
  const href = await page.locator(tid('span-suborchestration')).getAttribute('href');
  assert(href === `#/instances/${encodeURIComponent(CHILD)}`, `sub-orchestration bar links to ${href}, want the child ${CHILD}`);
  await page.locator(tid('child-link')).click();
  await page.locator(tid('instance-id')).filter({ hasText: CHILD }).waitFor();
  await waitCount(tid('span-activity'), 3);
  const parent = await page.locator(tid('parent-link')).getAttribute('href');
  assert(parent === `#/instances/${encodeURIComponent(PARENT)}`, `parent link: ${parent}`);
});

await step('the raw history is there on demand', async () => {
  await openInstance(HELLO);
  const raw = page.locator(tid('raw-history'));
  assert(!(await raw.locator('pre').isVisible()), 'raw history visible before it was asked for');
  await raw.locator('summary').click();
  await raw.locator('pre').filter({ hasText: '"EventType": "TaskCompleted"' }).waitFor();
});

await step('raise event with invalid JSON shows a validation error and sends nothing', async () => {
  await openInstance(WAITING);
  await page.locator(tid('instance-status')).filter({ hasText: 'Running' }).waitFor();
  let raised = 0;
  const onRequest = (req) => { if (req.url().includes('/raiseEvent/')) raised++; };
  page.on('request', onRequest);
  await page.locator(tid('action-raise')).click();
  await page.locator(tid('action-dialog')).waitFor({ state: 'visible' });
  await page.locator(tid('event-name')).fill('approval');
  await page.locator(tid('event-payload')).fill('{not json');
  await page.locator(tid('action-confirm')).click();
  await page.locator(tid('action-error')).filter({ hasText: 'not valid JSON' }).waitFor();
  assert(await page.locator(tid('action-dialog')).isVisible(), 'the dialog closed on invalid JSON');
  page.off('request', onRequest);
  assert(raised === 0, `${raised} raiseEvent requests were sent with invalid JSON`);
  assert(await page.locator(tid('event-payload')).getAttribute('aria-invalid') === 'true', 'the payload is not marked invalid');
  await page.locator(tid('action-cancel')).click();
  await page.locator(tid('action-dialog')).waitFor({ state: 'hidden' });
  await page.locator(tid('instance-status')).filter({ hasText: 'Running' }).waitFor();
});

await step('terminating the running instance (with confirmation) makes it Terminated', async () => {
  await page.locator(tid('action-terminate')).click();
  await page.locator(tid('action-dialog')).waitFor({ state: 'visible' });
  await page.locator(tid('action-reason')).fill('stopped from the browser test');
  await page.screenshot({ path: join(ART, 'dashboard-confirm-terminate.png') });
  await page.locator(tid('action-confirm')).click();
  await page.locator(tid('action-dialog')).waitFor({ state: 'hidden' });
  await page.locator(tid('instance-status')).filter({ hasText: 'Terminated' }).waitFor();
  await page.locator(tid('notice')).filter({ hasText: 'Terminate request accepted' }).waitFor();
  await page.locator('[data-testid="mark"][data-kind="ExecutionTerminated"]').waitFor({ state: 'attached' });
  await page.locator(tid('action-terminate')).waitFor({ state: 'detached' });
});

await step('bulk terminate and purge, with a confirmation and a report of each instance that failed', async () => {
  const call = (method, path) => page.evaluate(async ([method, path, key]) => {
    const r = await fetch(`/runtime/webhooks/durabletask/${path}`, { method, headers: { 'x-functions-key': key, 'Content-Type': 'application/json' }, body: method === 'POST' ? 'null' : undefined });
    return r.status;
  }, [method, path, KEY]);
  for (const id of ['bulk-1', 'bulk-2', 'bulk-3']) {
    assert(await call('POST', `orchestrators/wait_for_approval/${id}`) === 202, `start ${id}`);
    known.add(id);
  }
  await page.goto(`${URL_}#/?prefix=bulk-`);
  await waitRows(['bulk-1', 'bulk-2', 'bulk-3']);
  for (const id of ['bulk-1', 'bulk-2', 'bulk-3']) await page.locator(`[data-testid="instance-row"][data-id="${id}"][data-status="Running"]`).waitFor();
  assert(await page.locator(tid('bulk-terminate')).isDisabled(), 'Terminate is enabled with nothing selected');
  await page.locator(tid('select-all')).check();
  await page.locator(tid('bulk-count')).filter({ hasText: '3 selected' }).waitFor();
  await page.screenshot({ path: join(ART, 'dashboard-list-selected.png') });
  await page.locator(tid('bulk-terminate')).click();
  await page.locator(tid('action-dialog')).waitFor({ state: 'visible' });
  assert(/Terminate 3 instances\?/.test(await page.locator('#action-h').textContent()), 'the confirmation does not say how many');
  // bulk-3 finishes behind the page's back: its terminate is refused, and the page says so.
  assert(await call('POST', 'instances/bulk-3/terminate') === 202, 'terminate bulk-3 directly');
  // waitForFunction does not wait for a promise, so the page polls the status itself.
  const status = await page.evaluate(async ([key, timeout]) => {
    const deadline = Date.now() + timeout;
    let st = '';
    while (Date.now() < deadline) {
      const r = await fetch('/runtime/webhooks/durabletask/instances/bulk-3', { headers: { 'x-functions-key': key } });
      st = (await r.json()).runtimeStatus;
      if (st === 'Terminated') break;
      await new Promise((done) => setTimeout(done, 50)); // the polling interval
    }
    return st;
  }, [KEY, TIMEOUT]);
  assert(status === 'Terminated', `bulk-3 is ${status} after its terminate, want Terminated`);
  await page.locator(tid('action-confirm')).click();
  await page.locator(tid('action-dialog')).waitFor({ state: 'hidden' });
  const notice = page.locator(tid('notice'));
  await notice.filter({ hasText: 'Terminate requests accepted for 2 of 3; 1 failed' }).waitFor();
  assert(/bulk-3: 4\d\d /.test(await notice.textContent()), `the failure of bulk-3 is not reported: ${await notice.textContent()}`);
  await page.locator('[data-testid="instance-row"][data-id="bulk-1"][data-status="Terminated"]').waitFor();
  await page.locator('[data-testid="instance-row"][data-id="bulk-2"][data-status="Terminated"]').waitFor();
  await page.locator(tid('bulk-count')).filter({ hasText: '1 selected' }).waitFor(); // the failed one stays selected
  await page.locator(tid('bulk-clear')).click();
  for (const id of ['bulk-1', 'bulk-2']) await page.locator(`[data-testid="instance-row"][data-id="${id}"]`).locator(tid('select-row')).check();
  await page.locator(tid('bulk-purge')).click();
  await page.locator(tid('action-dialog')).waitFor({ state: 'visible' });
  assert(/Purge 2 instances\?/.test(await page.locator('#action-h').textContent()), 'the purge confirmation does not say how many');
  await page.locator(tid('action-confirm')).click();
  await notice.filter({ hasText: 'Purged 2 instances.' }).waitFor();
  known.delete('bulk-1');
  known.delete('bulk-2');
  await waitRows(['bulk-3']);
});

await step('purge works from the page; an action the API refuses shows its message', async () => {
  await openInstance(HELLO);
  await page.locator(tid('action-purge')).click();
  await page.locator(tid('action-dialog')).waitFor({ state: 'visible' });
  await page.locator(tid('action-confirm')).click();
  await page.locator(tid('notice')).filter({ hasText: `Purged ${HELLO}` }).waitFor();
  known.delete(HELLO);
  await waitRows(KNOWN());
  // An active instance, started through the management API as any client would.
  const started = await page.evaluate(async (key) => {
    const r = await fetch('/runtime/webhooks/durabletask/orchestrators/wait_for_approval/extra-1',
      { method: 'POST', headers: { 'x-functions-key': key, 'Content-Type': 'application/json' }, body: 'null' });
    return r.status;
  }, KEY);
  assert(started === 202, `starting extra-1: ${started}`);
  known.add('extra-1');
  await openInstance('extra-1');
  await page.locator(tid('action-restart')).click();
  await page.locator(tid('restart-same-id')).check();
  await page.locator(tid('action-confirm')).click();
  await page.locator(tid('action-error')).filter({ hasText: /409.*already active/ }).waitFor();
  await page.locator(tid('action-cancel')).click();
  await page.locator(tid('action-dialog')).waitFor({ state: 'hidden' });
});

await step('keyboard: Enter opens a confirmation dialog with the focus inside, Escape closes it and gives the focus back', async () => {
  await openInstance('extra-1');
  const terminate = page.locator(tid('action-terminate'));
  await terminate.focus();
  await page.keyboard.press('Enter');
  await page.locator(tid('action-dialog')).waitFor({ state: 'visible' });
  assert(await page.evaluate(() => document.activeElement?.closest('dialog')?.id === 'action-dialog'), 'the focus is not in the dialog');
  await page.keyboard.press('Escape');
  await page.locator(tid('action-dialog')).waitFor({ state: 'hidden' });
  await page.waitForFunction(() => document.activeElement?.dataset.testid === 'action-terminate');
  await page.locator(tid('instance-status')).filter({ hasText: 'Running' }).waitFor();
});

// entityRows returns the keys the entities table shows, in order.
const entityRows = () => page.locator(tid('entity-row')).evaluateAll((rs) => rs.map((r) => r.querySelector('[data-testid="entity-link"]').textContent));

async function waitEntityRows(keys) {
  const want = [...keys].sort();
  await page.waitForFunction((want) => {
    const got = [...document.querySelectorAll('[data-testid="entity-row"] [data-testid="entity-link"]')].map((a) => a.textContent).sort();
    return JSON.stringify(got) === JSON.stringify(want);
  }, want).catch(async (err) => {
    throw new Error(`entity rows: want ${JSON.stringify(want)}, have ${JSON.stringify(await entityRows())} (${err.message})`);
  });
}

const mgmt = (method, path, body) => page.evaluate(async ([method, path, body, key]) => {
  const r = await fetch(`/runtime/webhooks/durabletask/${path}`,
    { method, headers: { 'x-functions-key': key, 'Content-Type': 'application/json' }, body });
  return r.status;
}, [method, path, body, KEY]);

await step('the entities view lists the counters (a key of markup as text), transient ones on demand, filtered by name and key prefix, in pages', async () => {
  await page.goto(`${URL_}#/`);
  await waitRows(KNOWN()); // entities are not instances
  await page.locator(tid('nav-entities')).click();
  await waitEntityRows(['cats', XSS_KEY]);
  assert(await page.locator(tid('nav-entities')).getAttribute('aria-current') === 'page', 'the Entities link is not marked current');
  assert(await page.evaluate(() => document.querySelectorAll('img').length) === 0, 'the markup key became an element');
  const cats = page.locator(tid('entity-row')).filter({ hasText: 'cats' });
  const cells = await cats.locator('td').allTextContents();
  assert(cells[0] === 'counter' && /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(cells[2]) && cells[3] === 'free' && cells[4] === '0' && cells[5] === 'exists',
    `cats row: ${JSON.stringify(cells)}`);
  await page.locator(tid('entity-filter-transient')).check();
  await waitEntityRows(['cats', 'gone', XSS_KEY]);
  assert(page.url().includes('transient=true'), `URL without the transient filter: ${page.url()}`);
  assert(await page.locator(tid('entity-row')).filter({ hasText: 'gone' }).locator(tid('entity-state-badge')).textContent() === 'transient', 'gone is not marked transient');
  await page.screenshot({ path: join(ART, 'dashboard-entities.png'), fullPage: true });
  await page.locator(tid('entity-filter-name')).fill('counter');
  await page.locator(tid('entity-filter-key')).fill('ca');
  await page.locator(tid('entity-filter-key')).press('Enter');
  await waitEntityRows(['cats']);
  assert(page.url().includes('key=ca') && page.url().includes('name=counter'), `URL without the name and key: ${page.url()}`);
  await page.goto(`${URL_}#/entities?name=account`);
  await page.locator(tid('entity-empty')).waitFor();
  await page.goto(`${URL_}#/entities?key=ca`);
  await page.locator(tid('entity-hint')).filter({ hasText: 'needs an entity name' }).waitFor();
  // A page size of 1: three pages, Next and Previous walk them.
  await page.goto(`${URL_}#/entities?transient=true&top=1`);
  await waitCount(tid('entity-row'), 1);
  const seen = [...await entityRows()];
  for (const n of [2, 3]) {
    await page.locator(tid('entity-next')).click();
    await page.locator(tid('entity-page-no')).filter({ hasText: `Page ${n}` }).waitFor();
    await page.waitForFunction((seen) => {
      const got = [...document.querySelectorAll('[data-testid="entity-link"]')].map((a) => a.textContent);
      return got.length === 1 && !seen.includes(got[0]);
    }, seen);
    seen.push(...await entityRows());
  }
  await page.waitForFunction(() => document.querySelector('[data-testid="entity-next"]').disabled);
  assert(JSON.stringify([...seen].sort()) === JSON.stringify(['cats', 'gone', XSS_KEY].sort()), `paged over ${JSON.stringify(seen)}`);
  await page.locator(tid('entity-prev')).click();
  await page.locator(tid('entity-page-no')).filter({ hasText: 'Page 2' }).waitFor();
  await waitEntityRows([seen[1]]);
});

await step('an entity\'s page shows its state, last modified time and operations; a key of markup stays text', async () => {
  await page.goto(`${URL_}#/entities`);
  await page.locator(tid('entity-link')).filter({ hasText: 'cats' }).click();
  await page.locator(tid('entity-state')).filter({ hasText: /^3$/ }).waitFor();
  assert(await page.locator(tid('entity-id')).textContent() === '@counter@cats', 'instance ID');
  assert(await page.locator(tid('entity-exists')).textContent() === 'exists', 'exists badge');
  assert(await page.locator(tid('entity-lock')).textContent() === 'free', 'lock holder of a free entity');
  assert(await page.locator(tid('entity-backlog')).textContent() === '0', 'backlog');
  assert(/ GMT\+9$/.test(await page.locator(tid('entity-modified')).textContent()), 'last modified without its zone');
  await waitCount(tid('op-row'), 2);
  const ops = await page.locator(tid('op-row')).evaluateAll((rs) => rs.map((r) => [...r.cells].map((c) => c.textContent)));
  assert(ops.every((c) => c[1] === 'add' && /^[0-9a-f-]{36}$/.test(c[2]) && c[3] === 'signal' && c[4] === 'ok'), `ops: ${JSON.stringify(ops)}`);
  await page.goto(`${URL_}#/entities/counter/${encodeURIComponent(XSS_KEY)}`);
  await page.locator(tid('entity-state')).filter({ hasText: /^1$/ }).waitFor();
  assert(await page.locator(tid('entity-key')).textContent() === XSS_KEY, 'the key is not shown as written');
  assert(await page.evaluate(() => document.querySelectorAll('img').length) === 0, 'the markup key became an element');
  await page.goto(`${URL_}#/entities/counter/nobody`);
  await page.locator(tid('not-found')).filter({ hasText: 'No entity counter with key nobody' }).waitFor();
});

await step('a lock holder and a backlog show live, linking to the holding orchestration; the release runs the backlog', async () => {
  assert(await mgmt('POST', 'orchestrators/entity_holder/holder-1', '"locked"') === 202, 'start holder-1');
  known.add('holder-1');
  await page.goto(`${URL_}#/entities/counter/locked`);
  await page.locator(tid('entity-lock')).locator(tid('lock-link')).filter({ hasText: 'holder-1' }).waitFor();
  await page.locator(tid('op-row')).locator(tid('caller-link')).filter({ hasText: 'holder-1' }).waitFor();
  assert(await mgmt('POST', 'orchestrators/entity_signaller/signaller-1', '"locked"') === 202, 'start signaller-1');
  known.add('signaller-1');
  await page.locator(`${tid('entity-backlog')}[data-count="1"]`).waitFor();
  assert(/1 message waits behind the lock/.test(await page.locator(tid('entity-backlog')).textContent()), 'backlog text');
  await page.screenshot({ path: join(ART, 'dashboard-entity-locked.png'), fullPage: true });
  await page.goto(`${URL_}#/entities?name=counter&key=locked`);
  await waitEntityRows(['locked']);
  const cells = await page.locator(tid('entity-row')).locator('td').allTextContents();
  assert(cells[3] === 'holder-1' && cells[4] === '1', `locked row: ${JSON.stringify(cells)}`);
  await page.locator(tid('entity-link')).click();
  assert(await mgmt('POST', 'instances/holder-1/raiseEvent/release', '"now"') === 202, 'release holder-1');
  await page.locator(tid('entity-state')).filter({ hasText: /^6$/ }).waitFor();
  await page.locator(tid('entity-lock')).filter({ hasText: 'free' }).waitFor();
  await page.locator(`${tid('entity-backlog')}[data-count="0"]`).waitFor();
  await page.screenshot({ path: join(ART, 'dashboard-entity.png'), fullPage: true });
  await page.locator(tid('caller-link')).first().click();
  await page.locator(tid('instance-id')).filter({ hasText: 'holder-1' }).waitFor();
  await page.locator(tid('instance-status')).filter({ hasText: 'Completed' }).waitFor();
});

await step('light, dark and phone-width screenshots; the phone layout does not scroll sideways', async () => {
  await page.goto(`${URL_}#/`);
  await waitRows(KNOWN());
  await page.screenshot({ path: join(ART, 'dashboard-list-light.png'), fullPage: true });
  await page.emulateMedia({ colorScheme: 'dark' });
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert(bg !== 'rgb(247, 248, 250)', `dark mode did not change the background: ${bg}`);
  await page.screenshot({ path: join(ART, 'dashboard-list-dark.png'), fullPage: true });
  await openInstance(PARENT);
  await waitCount(tid('span-suborchestration'), 1);
  await page.screenshot({ path: join(ART, 'dashboard-instance-dark.png'), fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${URL_}#/`);
  await waitRows(KNOWN());
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(overflow <= 0, `the list scrolls sideways by ${overflow}px at 390px`);
  await page.screenshot({ path: join(ART, 'dashboard-list-phone.png'), fullPage: true });
  await openInstance(FAILED);
  await page.screenshot({ path: join(ART, 'dashboard-instance-phone.png'), fullPage: true });
  await page.goto(`${URL_}#/entities?transient=true`);
  await waitEntityRows(['cats', 'gone', 'locked', XSS_KEY]);
  const entOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(entOverflow <= 0, `the entities list scrolls sideways by ${entOverflow}px at 390px`);
  await page.screenshot({ path: join(ART, 'dashboard-entities-phone.png'), fullPage: true });
});

await step('signing out forgets the key and asks for it again', async () => {
  await page.setViewportSize({ width: 1280, height: 860 });
  await page.locator(tid('sign-out')).click();
  await page.locator(tid('key-dialog')).waitFor({ state: 'visible' });
  assert(await page.evaluate(() => sessionStorage.length) === 0, 'the key is still in sessionStorage');
});

await browser.close();
if (pageErrors.length) {
  console.log(`not ok - the page logged errors:\n  ${pageErrors.join('\n  ')}`);
  process.exit(1);
}
console.log(`OK ${n} steps`);
