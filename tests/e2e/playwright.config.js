// Playwright configuration for the portal's end-to-end tests. scripts/e2e.sh starts a real
// `sealpost serve` (portal + key service + demo mailbox) and sets SEALPOST_E2E_* for the tests.
// Chromium is Debian's (/usr/bin/chromium): `npx playwright install` cannot download here.
const { defineConfig } = require('@playwright/test');

module.exports = defineConfig({
  testDir: './specs',
  // One server, one outbox: tests run one at a time, in file order.
  workers: 1,
  fullyParallel: false,
  timeout: 90_000,
  expect: { timeout: 20_000 },
  retries: 0,
  // `list` for people; the JSON report lets scripts/e2e.sh print one `N passed, N failed` line.
  reporter: [['list'], ['json', { outputFile: '../../target/e2e-results/report.json' }]],
  outputDir: '../../target/e2e-results',
  use: {
    baseURL: process.env.SEALPOST_E2E_URL,
    acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
});
