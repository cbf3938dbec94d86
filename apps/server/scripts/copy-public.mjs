// Copies the static demo page next to the compiled server (dist/public), and the browser
// build of @retrotro/client (its dist/*.js, ESM, no dependencies) to dist/public/sdk/, which
// the server serves as /sdk/<name>.js for the page's `import ... from '/sdk/index.js'`.
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const out = new URL('../dist/public/', import.meta.url);
rmSync(out, { recursive: true, force: true });
cpSync(new URL('../public', import.meta.url), out, { recursive: true });

// Resolved through the package (its exports' "." entry), not by a relative path into the repo.
const sdkDir = dirname(fileURLToPath(import.meta.resolve('@retrotro/client')));
const sdkOut = fileURLToPath(new URL('sdk/', out));
mkdirSync(sdkOut, { recursive: true });
const files = readdirSync(sdkDir).filter((f) => /^[a-z0-9-]+\.js$/.test(f));
if (!files.includes('index.js')) throw new Error(`no index.js in ${sdkDir}: build @retrotro/client first`);
for (const f of files) {
  // The source maps point at ../src, which is not served: drop the reference.
  const text = readFileSync(join(sdkDir, f), 'utf8').replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n');
  writeFileSync(join(sdkOut, f), text);
}
console.log(`copied public/ and ${files.length} SDK files (${sdkDir}) to dist/public`);
