// The chat page of `lav2 serve` in headless Chromium (Debian's chromium, driven by playwright-core),
// for tests/cli/test_serve_cli.cpp:
//   node chat_page.cjs PACKAGE_DIR CHROMIUM URL STOP_URL IMAGE_FILE SCREENSHOT
// At URL: choose the image, ask, wait for the streamed answer, take a screenshot. At STOP_URL (a
// server whose answers run long): ask, wait for the first streamed text, press Stop. Prints one
// JSON object: the answer, how the first and the stopped answer ended, the stopped answer's text.
const [pkg, executablePath, url, stopUrl, image, screenshot] = process.argv.slice(2);
const {chromium} = require(pkg);

async function ask(page, text) {
  await page.fill('#text', text);
  await page.click('#send');
  await page.waitForFunction(() => {
    const a = document.querySelectorAll('#log .assistant, #log .error');
    return a.length && a[a.length - 1].textContent.length > 0;
  });
}

async function main() {
  const browser = await chromium.launch({executablePath, args: ['--no-sandbox']});
  try {
    const page = await browser.newPage({viewport: {width: 900, height: 640}});
    await page.goto(url);
    await page.setInputFiles('#image', image);
    await page.waitForFunction(() => document.getElementById('preview').style.display === 'block');
    await ask(page, 'What is in the image?');
    await page.waitForSelector('#log [data-done]');
    const first = await page.$eval('#log [data-done]', e => ({text: e.textContent, done: e.dataset.done}));
    await page.screenshot({path: screenshot, fullPage: true});

    const long = await browser.newPage();
    await long.goto(stopUrl);
    await ask(long, 'Tell me a story.');
    await long.click('#stop');
    await long.waitForSelector('#log [data-done]');
    const stopped = await long.$eval('#log [data-done]', e => ({text: e.textContent, done: e.dataset.done}));
    const sendEnabled = await long.$eval('#send', e => !e.disabled);
    console.log(JSON.stringify({answer: first.text, done: first.done, stopped: stopped.text,
                                stopped_done: stopped.done, send_enabled_after_stop: sendEnabled}));
  } finally {
    await browser.close();
  }
}
main().catch(e => { console.error(String(e && e.stack || e)); process.exit(1); });
