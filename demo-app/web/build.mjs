// Build the storefront's browser bundle: esbuild (bundled, minified, with source maps) into the
// shop's git-ignored static folder, then sentry-cli injects a debug id into each file and its
// map, so Bugsink maps an error's stack back to these sources whatever the release.
// Usage: npm run build (scripts/test.sh and demo-app/Dockerfile run it; never edit dist/).
// With SENTRY_URL and SENTRY_AUTH_TOKEN set (a Bugsink and one of its auth tokens), the source
// maps are uploaded too (upload-sourcemaps.mjs); without them the build only says it skipped.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
/** The inline bootstrap's budget: it is part of every page's HTML. */
const BOOT_MAX_BYTES = 1024;
export const outdir = join(here, '..', 'src', 'lookout_demo', 'storefront', 'static', 'dist');

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
const entryPoints = {
  telemetry: join(here, 'src', 'telemetry.js'),
  errors: join(here, 'src', 'errors.js'),
  app: join(here, 'src', 'app.js'),
};
const result = await esbuild.build({
  entryPoints,
  outdir,
  // Content-hashed names (telemetry-3FQ2K7XA.js), listed in manifest.json for the shop's
  // templates: the files are served as immutable, so a repeat view never asks for them again.
  entryNames: '[name]-[hash]',
  bundle: true,
  format: 'iife',
  // Browsers of the last few years; keeps class fields and optional chaining as written.
  target: ['es2020'],
  minify: true,
  // Linked .map files with the sources inside: what Bugsink needs to show the source lines.
  sourcemap: 'linked',
  sourcesContent: true,
  legalComments: 'linked',
  metafile: true,
  logLevel: 'warning',
});
// Name each source by its path in the repository (demo-app/web/src/app.js), not by a path
// relative to dist/ (../../../../../web/src/app.js): that is what Bugsink shows in a frame.
const repo = resolve(here, '..', '..');
for (const file of Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.map'))) {
  const path = resolve(here, file);
  const map = JSON.parse(readFileSync(path, 'utf8'));
  map.sources = map.sources.map((source) => relative(repo, resolve(dirname(path), source)));
  writeFileSync(path, JSON.stringify(map));
}
const sentryCli = join(here, 'node_modules', '.bin', 'sentry-cli');
execFileSync(sentryCli, ['sourcemaps', 'inject', outdir], { stdio: ['ignore', 'ignore', 'inherit'] });
const manifest = {};
for (const [file, { bytes, entryPoint }] of Object.entries(result.metafile.outputs)) {
  if (!entryPoint) continue;
  const name = Object.keys(entryPoints).find((key) => resolve(entryPoints[key]) === resolve(here, entryPoint));
  manifest[name] = relative(outdir, resolve(here, file));
  console.log(`built ${relative(here, file)} (${bytes} bytes)`);
}
// The inline bootstrap (boot.js): built after the debug ids are injected, without a source map,
// because the shop writes its text into every page's <head> rather than linking it; it must stay
// small, as every page view (cached or not) carries it.
const boot = await esbuild.build({
  entryPoints: { boot: join(here, 'src', 'boot.js') },
  outdir,
  entryNames: '[name]-[hash]',
  bundle: true,
  format: 'iife',
  target: ['es2020'],
  minify: true,
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
});
const [bootFile, { bytes: bootBytes }] = Object.entries(boot.metafile.outputs)[0];
if (bootBytes > BOOT_MAX_BYTES) {
  throw new Error(`src/boot.js: ${bootBytes} bytes minified, over ${BOOT_MAX_BYTES}; it is inlined in every page, so keep it small`);
}
manifest.boot = relative(outdir, resolve(here, bootFile));
console.log(`built ${relative(here, bootFile)} (${bootBytes} bytes, inlined in each page)`);
writeFileSync(join(outdir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
// Precompressed copies (after the debug ids are in): the shop sends them to browsers that
// accept gzip, a third of the bytes on the wire, with no compression work per request.
for (const [name, file] of Object.entries(manifest)) {
  if (name === 'boot') continue; // inlined in the pages, never served as a file
  const path = join(outdir, file);
  writeFileSync(`${path}.gz`, gzipSync(readFileSync(path), { level: 9 }));
}
// Upload at build when a tracker is configured (the script says why when it is not).
execFileSync(process.execPath, [join(here, 'upload-sourcemaps.mjs')], { stdio: 'inherit' });
