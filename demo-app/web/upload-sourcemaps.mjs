// Upload the built bundle's source maps to Bugsink (Sentry-compatible: sentry-cli's debug-id
// artifact bundles), so browser errors show the source file and line. build.mjs runs it last;
// run it alone to upload a bundle built earlier (the image's: same lock file, same debug ids).
//   SENTRY_URL=http://127.0.0.1:8010/ SENTRY_AUTH_TOKEN=<token> npm run upload-sourcemaps
// SENTRY_ORG is ignored by Bugsink (one organisation) but sentry-cli wants one; SENTRY_PROJECT
// defaults to "storefront". Without SENTRY_URL and SENTRY_AUTH_TOKEN it says so and exits 0:
// a build without a tracker to upload to is not a failed build.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const outdir = join(here, '..', 'src', 'lookout_demo', 'storefront', 'static', 'dist');
const { SENTRY_URL, SENTRY_AUTH_TOKEN } = process.env;

if (!SENTRY_URL || !SENTRY_AUTH_TOKEN) {
  console.log('source maps not uploaded: set SENTRY_URL and SENTRY_AUTH_TOKEN (a Bugsink token)');
  process.exit(0);
}
if (!existsSync(join(outdir, 'manifest.json'))) {
  console.error(`no source maps in ${outdir}: run npm run build first`);
  process.exit(2);
}
execFileSync(
  join(here, 'node_modules', '.bin', 'sentry-cli'),
  [
    'sourcemaps',
    'upload',
    '--org',
    process.env.SENTRY_ORG || 'lookout',
    '--project',
    process.env.SENTRY_PROJECT || 'storefront',
    outdir,
  ],
  { stdio: 'inherit', env: { ...process.env, SENTRY_LOG_LEVEL: process.env.SENTRY_LOG_LEVEL || 'warn' } },
);
