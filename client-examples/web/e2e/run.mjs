// Drives the built app in headless Chromium (Debian's, via playwright-core) as two people would: alice
// posts, bob comments and alice sees it live; they chat (typing, unread, receipts); bob sends while offline
// and the message arrives exactly once; alice uploads an avatar; a developer runs a query with a header and
// a live subscription in the router's GraphiQL; an admin reads the analytics page and downloads a report;
// alice's access token expires and is refreshed without her
// noticing. APP_URL is the served app, built against API_URL (the router, started with access tokens that
// live TOKEN_TTL_SECS). Screenshots go to e2e/screenshots/.
import { chromium } from 'playwright-core';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';

const APP_URL = process.env.APP_URL ?? 'http://127.0.0.1:4173/';
const API_URL = process.env.API_URL ?? 'http://127.0.0.1:4000/graphql';
// The admin address `parley up` was given (PARLEY_ADMIN_EMAILS) and where it writes mail (no SMTP server).
const ADMIN_EMAIL = process.env.ADMIN_EMAIL;
const MAIL_DIR = process.env.MAIL_DIR;
const TOKEN_TTL_SECS = Number(process.env.TOKEN_TTL_SECS ?? 900);
const shots = new URL('./screenshots/', import.meta.url).pathname;
mkdirSync(shots, { recursive: true });
const run = Date.now().toString(36);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const step = (name) => console.log(`e2e: ${name}`);
const people = [];

async function person(nickname) {
  const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`${nickname}: page error: ${error.message}`));
  if (process.env.DEBUG_WS) page.on('websocket', (ws) => {
    const t = () => new Date().toISOString().slice(14, 23);
    console.log(t(), nickname, 'ws open');
    ws.on('framesent', (f) => console.log(t(), nickname, 'sent', String(f.payload).slice(0, 120)));
    ws.on('framereceived', (f) => console.log(t(), nickname, 'recv', String(f.payload).slice(0, 160)));
    ws.on('close', () => console.log(t(), nickname, 'ws closed'));
  });
  await page.goto(APP_URL);
  await page.locator('input[name=email]').waitFor();
  if (people.length === 0) await page.screenshot({ path: `${shots}signin.png` });
  await page.fill('input[name=email]', `${nickname}-${run}@example.com`);
  await page.fill('input[name=password]', 'correct horse 1');
  await page.fill('input[name=name]', nickname);
  await page.fill('input[name=nickname]', `${nickname}${run}`);
  await page.click('button[type=submit]');
  await page.getByTestId('me').waitFor();
  people.push({ page, nickname });
  return { context, page, nickname: `${nickname}${run}` };
}

// Replaces the text of a GraphiQL (Monaco) editor as a person would: select all, then type.
async function typeInto(page, editor, text) {
  await page.locator(`${editor} .monaco-editor`).click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
  await page.waitForTimeout(500); // GraphiQL takes in an edit after a 100 ms debounce
}

// The router's GraphiQL as a developer uses it: a token in the Headers editor, a query, then a subscription
// that receives a comment `commenter` writes in the app.
async function graphiql(commenter, postId) {
  const nickname = `dev${run}`;
  const register = await fetch(API_URL, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      query: 'mutation($i: RegisterInput!) { register(input: $i) { accessToken } }',
      variables: { i: { email: `${nickname}@example.com`, password: 'correct horse 1', name: 'Dev', nickname } },
    }),
  }).then((response) => response.json());
  const token = register.data.register.accessToken;
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  people.push({ page, nickname: 'graphiql' });
  await page.goto(new URL('/', API_URL).href);
  const response = page.locator('.graphiql-response');
  await typeInto(page, '.graphiql-editor-tool .graphiql-editor:not(.hidden)', `{"Authorization": "Bearer ${token}"}`);
  await typeInto(page, '.graphiql-query-editor', 'query Me { me { nickname } }');
  await page.locator('.graphiql-execute-button').click();
  await response.filter({ hasText: nickname }).waitFor({ timeout: 10_000 });
  step('GraphiQL ran a query with an Authorization header');

  await typeInto(page, '.graphiql-query-editor', `subscription Live { commentAdded(postId: "${postId}") { body } }`);
  await page.locator('.graphiql-execute-button').click();
  await page.waitForTimeout(1_000); // the subscription starts
  await commenter.page.goto(`${APP_URL}#/post/${postId}`);
  await commenter.page.getByTestId('comment-input').fill('seen in GraphiQL');
  await commenter.page.getByTestId('comment-input').press('Enter');
  await response.filter({ hasText: 'seen in GraphiQL' }).waitFor({ timeout: 10_000 });
  step('GraphiQL received a live comment from the app');
  await page.screenshot({ path: `${shots}graphiql.png` });
  await context.close();
  people.pop();
}

async function api(query, variables, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const answer = await fetch(API_URL, { method: 'POST', headers, body: JSON.stringify({ query, variables }) })
    .then((response) => response.json());
  if (answer.errors) throw new Error(`${query}: ${JSON.stringify(answer.errors)}`);
  return answer.data;
}

// The code in the welcome mail to `email` (quoted-printable soft breaks undone).
async function welcomeCode(email) {
  const marker = 'Confirm your email with this code:';
  for (let i = 0; i < 50; i += 1) {
    for (const file of readdirSync(MAIL_DIR).filter((f) => f.endsWith('.eml'))) {
      const mail = readFileSync(`${MAIL_DIR}/${file}`, 'utf8').replace(/=\r?\n/g, '');
      if (mail.includes(email) && mail.includes(marker)) {
        return mail.split(marker)[1].split(/\r?\n/).map((l) => l.trim()).find((l) => l);
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`no welcome mail to ${email}`);
}

// An admin opens the analytics page: the charts show what alice and bob did, the routers' latency per
// operation appears, and a report downloads as CSV.
async function analyst() {
  if (!ADMIN_EMAIL || !MAIL_DIR) {
    step('analytics page skipped (ADMIN_EMAIL and MAIL_DIR not set)');
    return;
  }
  const password = 'correct horse 1';
  await api('mutation($i: RegisterInput!) { register(input: $i) { accessToken } }', {
    i: { email: ADMIN_EMAIL, password, name: 'Analyst', nickname: `analyst${run}` },
  });
  await api('mutation($t: String!) { verifyEmail(token: $t) }', { t: await welcomeCode(ADMIN_EMAIL) });
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  people.push({ page, nickname: 'analyst' });
  await page.goto(APP_URL);
  await page.getByRole('button', { name: 'Log in' }).first().click();
  await page.fill('input[name=email]', ADMIN_EMAIL);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
  await page.getByTestId('analytics-link').click();
  await page.locator('[data-testid=active-users] svg polyline').waitFor({ timeout: 15_000 });
  await page.getByTestId('content').filter({ hasText: /Last 30 days: [1-9]\d* posts, [1-9]\d* comments/ })
    .waitFor({ timeout: 15_000 });
  // The routers' histograms are sampled every second here: reload until the app's own operations show.
  for (let i = 0; i < 20; i += 1) {
    if (await page.getByTestId('performance').getByRole('cell', { name: 'NavMe' }).count()) break;
    await page.waitForTimeout(1_000);
    await page.reload();
    await page.locator('[data-testid=performance] table').waitFor({ timeout: 15_000 });
  }
  await page.getByTestId('performance').getByRole('cell', { name: 'NavMe' }).waitFor({ timeout: 1_000 });
  step('the admin\'s analytics page drew active users, content and the routers\' latency per operation');
  await page.screenshot({ path: `${shots}analytics.png`, fullPage: true });
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByTestId('content').getByRole('button', { name: 'CSV' }).click(),
  ]);
  const csv = readFileSync(await download.path(), 'utf8');
  if (!csv.startsWith('start,posts,comments,votes,messages,uploads,signups')) throw new Error(`CSV: ${csv}`);
  step('the content report downloaded as CSV through a signed link');
  await context.close();
  people.pop();
}

try {
  const alice = await person('alice');
  const bob = await person('bob');
  step('registered');
  await alice.page.screenshot({ path: `${shots}hot.png` });

  await alice.page.fill('[data-testid=new-post] input', 'Hello from alice');
  await alice.page.fill('[data-testid=new-post] textarea', 'First post.');
  await alice.page.click('[data-testid=new-post] button');
  await alice.page.getByTestId('post-title').waitFor();
  const postUrl = alice.page.url();
  step('alice posted');

  // Time to first render: a reload of Hot (session restored from the refresh token, then the posts query)
  // until the first post shows, from the navigation's start.
  await alice.page.goto(`${APP_URL}#/hot`);
  await alice.page.reload();
  await alice.page.locator('a[href^="#/post/"]').first().waitFor();
  const firstRender = await alice.page.evaluate(() => Math.round(performance.now()));
  step(`first render of Hot with its posts after a reload: ${firstRender} ms`);
  await alice.page.goto(postUrl);

  await bob.page.goto(postUrl);
  await bob.page.getByTestId('comment-input').fill('Nice post, alice');
  await bob.page.getByTestId('comment-input').press('Enter');
  await alice.page.getByText('Nice post, alice').waitFor({ timeout: 10_000 });
  await bob.page.getByTestId('upvote').click();
  await alice.page.locator('[data-testid=score]', { hasText: '1' }).waitFor({ timeout: 10_000 });
  step('alice saw the comment and the vote arrive');
  await alice.page.screenshot({ path: `${shots}post.png` });
  await alice.page.getByTestId('unread-notifications').waitFor({ timeout: 10_000 });
  step('alice\'s notifications badge lit up live');

  await alice.page.goto(`${APP_URL}#/search`);
  await alice.page.getByTestId('search').pressSequentially('hello', { delay: 40 });
  await alice.page.getByTestId('results').getByRole('link', { name: 'Hello from alice' }).waitFor({ timeout: 15_000 });
  step('search as you type found the post');
  await alice.page.screenshot({ path: `${shots}search.png` });
  await bob.page.getByTestId('follow').click();
  await bob.page.getByTestId('following').waitFor();
  await bob.page.goto(`${APP_URL}#/feed`);
  await bob.page.getByTestId('feed').getByText('Hello from alice').waitFor({ timeout: 15_000 });
  step('bob followed alice from her post; it is in his feed');
  await bob.page.screenshot({ path: `${shots}feed.png` });

  await alice.page.goto(`${APP_URL}#/chats`);
  await alice.page.getByTestId('new-chat').fill(bob.nickname);
  await alice.page.getByTestId('new-chat').press('Enter');
  await alice.page.getByTestId('composer').waitFor();
  await alice.page.getByTestId('composer').fill('hi bob');
  await alice.page.getByTestId('composer').press('Enter');
  await alice.page.getByTestId('message').filter({ hasText: 'hi bob' }).waitFor();

  await bob.page.goto(`${APP_URL}#/chats`);
  await bob.page.getByTestId('unread').filter({ hasText: '1' }).waitFor({ timeout: 10_000 });
  await bob.page.screenshot({ path: `${shots}chats.png` });
  await bob.page.getByTestId('chat-list').locator('a').first().click();
  await bob.page.getByText('hi bob').waitFor();
  await alice.page.getByTestId('receipt').waitFor({ timeout: 10_000 });
  step('bob read it; alice sees the receipt');

  await bob.page.getByTestId('composer').pressSequentially('hello al', { delay: 30 });
  await alice.page.getByTestId('typing').filter({ hasText: 'is typing' }).waitFor({ timeout: 10_000 });
  await bob.page.getByTestId('composer').press('Enter');
  await alice.page.getByText('hello al').waitFor({ timeout: 10_000 });
  step('alice saw bob typing, then his message');

  await bob.context.setOffline(true);
  await bob.page.getByTestId('composer').fill('sent while offline');
  await bob.page.getByTestId('composer').press('Enter');
  await bob.page.getByTestId('pending').filter({ hasText: 'retrying' }).waitFor({ timeout: 10_000 });
  await bob.page.screenshot({ path: `${shots}offline.png` });
  await bob.context.setOffline(false);
  await alice.page.getByText('sent while offline').waitFor({ timeout: 20_000 });
  await alice.page.waitForTimeout(4_000); // time for any duplicate to show up
  const copies = await alice.page.getByTestId('message').filter({ hasText: 'sent while offline' }).count();
  if (copies !== 1) throw new Error(`the offline message arrived ${copies} times`);
  await bob.page.getByTestId('pending').waitFor({ state: 'detached', timeout: 10_000 });
  step('the message sent offline arrived exactly once');
  await alice.page.screenshot({ path: `${shots}chat.png` });

  await alice.page.goto(`${APP_URL}#/profile`);
  const picture = await alice.page.screenshot({ clip: { x: 0, y: 0, width: 256, height: 256 } });
  await alice.page.getByTestId('avatar-file').setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: picture });
  const avatar = alice.page.getByTestId('avatar');
  await avatar.waitFor({ timeout: 20_000 });
  await alice.page.waitForFunction((img) => img.complete && img.naturalWidth > 0, await avatar.elementHandle());
  step('alice uploaded an avatar (PUT to the signed URL, processed, shown)');
  await alice.page.screenshot({ path: `${shots}profile.png` });

  await graphiql(bob, postUrl.split('/').pop());
  await analyst();

  // Silent refresh: alice's laptop is offline past her access token's expiry (no timer can renew it); when
  // it is back, the next request is refused, refreshed once and retried, the socket reconnects with the new
  // token, and the live stream goes on — she never sees any of it.
  const refreshesSoFar = async () => {
    await alice.page.goto(`${APP_URL}#/profile`);
    return Number((await alice.page.getByTestId('refreshes').textContent()).match(/\d+/)[0]);
  };
  const before = await refreshesSoFar();
  await alice.page.goto(postUrl);
  await alice.page.getByTestId('comment-input').waitFor();
  await alice.context.setOffline(true);
  await alice.page.waitForTimeout((TOKEN_TTL_SECS + 2) * 1000);
  await alice.context.setOffline(false);
  await alice.page.bringToFront();
  await bob.page.goto(postUrl);
  await bob.page.getByTestId('comment-input').fill('still here?');
  await bob.page.getByTestId('comment-input').press('Enter');
  await alice.page.getByText('still here?').waitFor({ timeout: 10_000 });
  await alice.page.getByTestId('comment-input').fill('yes, after a refresh');
  await alice.page.getByTestId('comment-input').press('Enter');
  await bob.page.getByText('yes, after a refresh').waitFor({ timeout: 10_000 });
  // Chromium throttles the timers of a page that is not in front; the refresh may also land a moment after
  // the answer it unblocked: look for it for a while, with alice's page in front.
  await alice.page.bringToFront();
  let after = await refreshesSoFar();
  for (let i = 0; i < 15 && after <= before; i += 1) {
    await alice.page.waitForTimeout(2_000);
    after = await refreshesSoFar();
  }
  if (after <= before) throw new Error(`no refresh after the token expired (${before} before, ${after} after)`);
  await alice.page.getByTestId('me').waitFor();
  step(`alice's expired access token was refreshed silently (${after - before} refresh(es) since she went offline)`);

  console.log('e2e: ok');
} catch (error) {
  console.error(error);
  for (const { page, nickname } of people) await page.screenshot({ path: `${shots}failed-${nickname}.png` });
  process.exitCode = 1;
} finally {
  await browser.close();
}
