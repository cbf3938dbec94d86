#!/usr/bin/env node
// Prints the size of the published code as an app bundles it: dist/index.js and its imports
// bundled and minified (rolldown), then gzipped. Usage: pnpm build && pnpm --filter @retrotro/client size
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

const input = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const { output } = await build({ input, write: false, output: { format: 'esm', minify: true }, platform: 'browser' });
const code = output[0].code;
console.log(`minified: ${code.length} bytes, minified+gzip: ${gzipSync(code, { level: 9 }).length} bytes`);
