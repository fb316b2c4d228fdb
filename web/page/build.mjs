// Builds the page into dist/: one bundled, minified app.js (esbuild), app.css and index.html.
// Offline and reproducible: only esbuild from node_modules (package-lock.json) is used.
import { build } from 'esbuild';
import { mkdir, copyFile, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'dist');
await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await build({
  entryPoints: [join(here, 'src/app.js')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  outfile: join(out, 'app.js'),
  legalComments: 'none',
  logLevel: 'warning',
});
await build({
  entryPoints: [join(here, 'src/app.css')],
  minify: true,
  outfile: join(out, 'app.css'),
  logLevel: 'warning',
});
await copyFile(join(here, 'src/index.html'), join(out, 'index.html'));
await writeFile(join(out, '.gitkeep'), '');
console.log('page: built', out);
