// Drives the built app in headless Chromium (Debian's, via playwright-core) as two people would: alice
// posts, bob comments and alice sees it live; they chat (typing, unread, receipts); bob sends while offline
// and the message arrives exactly once. APP_URL is the served app, built against the API it should call.
// Screenshots go to e2e/screenshots/.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const APP_URL = process.env.APP_URL ?? 'http://127.0.0.1:4173/';
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
  await page.goto(APP_URL);
  await page.fill('input[name=email]', `${nickname}-${run}@example.com`);
  await page.fill('input[name=password]', 'correct horse 1');
  await page.fill('input[name=name]', nickname);
  await page.fill('input[name=nickname]', `${nickname}${run}`);
  await page.click('button[type=submit]');
  await page.getByTestId('me').waitFor();
  people.push({ page, nickname });
  return { context, page, nickname: `${nickname}${run}` };
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

  await bob.page.goto(postUrl);
  await bob.page.getByTestId('comment-input').fill('Nice post, alice');
  await bob.page.getByTestId('comment-input').press('Enter');
  await alice.page.getByText('Nice post, alice').waitFor({ timeout: 10_000 });
  await bob.page.getByTestId('upvote').click();
  await alice.page.locator('[data-testid=score]', { hasText: '1' }).waitFor({ timeout: 10_000 });
  step('alice saw the comment and the vote arrive');
  await alice.page.screenshot({ path: `${shots}post.png` });

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

  console.log('e2e: ok');
} catch (error) {
  console.error(error);
  for (const { page, nickname } of people) await page.screenshot({ path: `${shots}failed-${nickname}.png` });
  process.exitCode = 1;
} finally {
  await browser.close();
}
