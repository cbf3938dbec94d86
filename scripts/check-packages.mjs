#!/usr/bin/env node
// Checks what npm users would get from each publishable package (packages/* not private):
// pack it with pnpm (workspace:^ becomes a real range), lint the tarball with publint and
// @arethetypeswrong/cli, check package.json fields and the README, then install all the
// tarballs into a scratch project and import, run and typecheck them there.
// Usage: pnpm build && pnpm check:packages   (KEEP_TMP=1 keeps the temp dir for debugging)
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const REQUIRED_FIELDS = ['name', 'version', 'description', 'license', 'repository', 'engines', 'exports', 'files'];
const failures = [];
const warnings = [];

const fail = (pkg, what) => {
  failures.push(`${pkg}: ${what}`);
  console.log(`  FAIL ${what}`);
};
const warn = (pkg, what) => {
  warnings.push(`${pkg}: ${what}`);
  console.log(`  warn ${what}`);
};
const ok = (what) => console.log(`  ok   ${what}`);

/** Runs a command (killed after timeoutMs); returns { ok, out } with stdout and stderr together. */
function run(cmd, args, cwd, timeoutMs = 300_000) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, FORCE_COLOR: '0' } });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ?? ''}`.trim();
  return { ok: r.status === 0, out: out || `(no output, ${r.signal ? `killed by ${r.signal}` : `exit code ${r.status}`})` };
}
const indent = (text) =>
  text
    .split('\n')
    .map((l) => `       ${l}`)
    .join('\n');

/** The publishable workspace packages: packages/* whose package.json is not private. */
function publishablePackages() {
  return readdirSync(join(root, 'packages'))
    .map((name) => join(root, 'packages', name))
    .filter((dir) => existsSync(join(dir, 'package.json')))
    .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }))
    .filter(({ manifest }) => !manifest.private);
}

/** pnpm pack into its own directory, then unpack; returns the tarball and the unpacked dir. */
function pack(pkg, tmp) {
  const out = join(tmp, 'pack', pkg.manifest.name.replace('/', '__'));
  mkdirSync(out, { recursive: true });
  const r = run('pnpm', ['pack', '--pack-destination', out], pkg.dir);
  const tgz = readdirSync(out).find((f) => f.endsWith('.tgz'));
  if (!r.ok || !tgz) throw new Error(`pnpm pack failed:\n${r.out}`);
  run('tar', ['-xzf', tgz], out);
  return { tarball: join(out, tgz), unpacked: join(out, 'package') };
}

/** publint on exactly the published files: errors fail, warnings and suggestions are shown. */
async function checkPublint(name, unpacked) {
  const { messages, pkg } = await publint({ pkgDir: unpacked, pack: false, level: 'suggestion' });
  for (const m of messages) {
    const text = `publint ${m.type}: ${formatMessage(m, pkg, { color: false })}`;
    m.type === 'error' ? fail(name, text) : warn(name, text);
  }
  if (!messages.some((m) => m.type === 'error')) ok('publint: no errors');
}

/** attw on the tarball; ESM-only packages, so the CommonJS resolution modes are not judged. */
function checkTypes(name, tarball) {
  const r = run('pnpm', ['exec', 'attw', tarball, '--profile', 'esm-only', '--format', 'table-flipped', '--no-emoji'], root);
  if (r.ok) ok('attw (esm-only profile): no problems');
  else fail(name, `attw found problems:\n${indent(r.out)}`);
}

/** The published package.json has every required field, and its exports carry types. */
function checkManifest(name, manifest) {
  const missing = REQUIRED_FIELDS.filter((f) => manifest[f] === undefined || manifest[f] === '');
  if (missing.length) fail(name, `package.json lacks ${missing.join(', ')}`);
  const untyped = Object.entries(manifest.exports ?? {}).filter(
    ([key, value]) => key !== './package.json' && !(typeof value === 'object' && value.types),
  );
  if (untyped.length) fail(name, `exports without "types": ${untyped.map(([k]) => k).join(', ')}`);
  const leaked = Object.entries({ ...manifest.dependencies, ...manifest.peerDependencies }).filter(([, range]) =>
    String(range).startsWith('workspace:'),
  );
  if (leaked.length) fail(name, `workspace: ranges left in the tarball: ${leaked.map(([d]) => d).join(', ')}`);
  if (!missing.length && !untyped.length && !leaked.length) ok(`package.json fields (${name}@${manifest.version})`);
}

/**
 * Packages imported by the published .d.ts files must be dependencies. When their types come
 * from an @types package that is only a devDependency, TypeScript users must install it
 * themselves: warn, and return it so the scratch project can install it as a user would.
 */
function checkTypeImports(name, manifest, unpacked) {
  const declared = { ...manifest.dependencies, ...manifest.peerDependencies };
  const imported = new Set();
  for (const file of readdirSync(unpacked, { recursive: true }).filter((f) => f.endsWith('.d.ts'))) {
    for (const [, spec] of readFileSync(join(unpacked, file), 'utf8').matchAll(/(?:from|import\()\s*'([^'.][^']*)'/g)) {
      if (!isBuiltin(spec))
        imported.add(
          spec
            .split('/')
            .slice(0, spec.startsWith('@') ? 2 : 1)
            .join('/'),
        );
    }
  }
  const extraTypes = [];
  const undeclared = [...imported].filter((dep) => dep !== name && !(dep in declared));
  for (const dep of undeclared) fail(name, `published types import '${dep}', which is not a dependency`);
  for (const dep of imported) {
    const typesPkg = `@types/${dep.replace(/^@/, '').replace('/', '__')}`;
    if (manifest.devDependencies?.[typesPkg] && !(typesPkg in declared)) {
      warn(name, `published types import '${dep}', but ${typesPkg} is only a devDependency: TypeScript users must install it`);
      extraTypes.push(`${typesPkg}@${manifest.devDependencies[typesPkg]}`);
    }
  }
  if (!undeclared.length) ok(`type imports declared (${[...imported].join(', ') || 'none'})`);
  return extraTypes;
}

/** The tarball has a README with an install section and a code example importing the package. */
function checkReadme(name, unpacked) {
  const file = join(unpacked, 'README.md');
  if (!existsSync(file)) return fail(name, 'README.md is not in the tarball');
  const readme = readFileSync(file, 'utf8');
  const problems = [];
  if (!/^#{2,3} Install/im.test(readme)) problems.push('no "## Install" section');
  if (!new RegExp("```(ts|js|typescript|javascript)\\n[^`]*from '" + name + "'").test(readme)) problems.push(`no code example importing '${name}'`);
  if (problems.length) fail(name, `README.md: ${problems.join(', ')}`);
  else ok('README.md: install section and code example');
}

// Run in the scratch project: import every package, relay a frame between two buses over
// MemoryTransport, and construct the broker buses and a Socket.IO adapter factory without connecting.
const SMOKE_JS = `
import * as core from '@retrotro/bus-core';
import * as pg from '@retrotro/bus-pg';
import * as nats from '@retrotro/bus-nats';
import * as internal from '@retrotro/bus-core/internal';
import * as sio from '@retrotro/socket.io-adapter';
// The bus's own timers are unref()'d (a server keeps the process alive); so must we, here.
const keepAlive = setInterval(() => {}, 1_000);
const expect = (cond, what) => { if (!cond) { console.error('FAIL ' + what); process.exitCode = 1; } };
const exportsOf = { '@retrotro/bus-core': [core, ['RelayBus', 'MemoryBroker', 'MemoryTransport', 'BusError', 'BrokerUnreachableError', 'STREAMS']],
  '@retrotro/bus-core/internal': [internal, ['maskUrl', 'TransportLifecycle']],
  '@retrotro/bus-pg': [pg, ['PgBus', 'PgTransport', 'Channels']], '@retrotro/bus-nats': [nats, ['NatsBus', 'NatsTransport', 'roomToken']],
  '@retrotro/socket.io-adapter': [sio, ['createAdapter', 'BusAdapter']] };
for (const [name, [mod, names]] of Object.entries(exportsOf))
  for (const n of names) expect(mod[n] !== undefined, name + ' exports ' + n);
const received = [];
const hub = (pod) => ({ deliverLocal: (roomId, frame) => received.push({ pod, roomId, frame }),
  participantJoined() {}, participantLeft() {}, cancelPendingDisconnect() {} });
const broker = new core.MemoryBroker();
const a = new core.RelayBus({ transport: new core.MemoryTransport(broker), podId: 'pod-a' });
const b = new core.RelayBus({ transport: new core.MemoryTransport(broker), podId: 'pod-b' });
await a.start(hub('a')); await b.start(hub('b')); await Promise.all([a.whenReady(), b.whenReady()]);
const sent = await a.publishToRemotePods('room-1', { type: 'hello', payload: { n: 1 } });
expect(sent.ok, 'publishToRemotePods resolves ok');
for (let i = 0; i < 100 && !received.some((r) => r.pod === 'b'); i++) await new Promise((r) => setTimeout(r, 20));
expect(received.some((r) => r.pod === 'b' && r.roomId === 'room-1' && r.frame.payload?.n === 1), 'pod b receives the frame');
expect(!received.some((r) => r.pod === 'a'), 'pod a does not receive its own remote-only frame');
await a.stop(); await b.stop();
const pgBus = new pg.PgBus({ connectionString: 'postgres://app:secret@127.0.0.1:1/db' });
expect(pgBus instanceof core.RelayBus, 'PgBus is a RelayBus of the same bus-core copy');
const natsBus = new nats.NatsBus({ servers: 'nats://127.0.0.1:1' });
expect(natsBus instanceof core.RelayBus, 'NatsBus is a RelayBus of the same bus-core copy');
expect(typeof sio.createAdapter({ bus: { type: 'nats', servers: 'nats://127.0.0.1:1' } }) === 'function', 'createAdapter returns a factory without connecting');
clearInterval(keepAlive);
if (!process.exitCode) console.log('smoke test passed');
`;

// Typechecked in the scratch project (NodeNext, strict, lib checks on): the public types resolve.
const TYPES_TS = `
import { RelayBus, MemoryBroker, MemoryTransport, type LocalHub, type Frame, type PublishResult } from '@retrotro/bus-core';
import { PgBus, type PgBusOptions } from '@retrotro/bus-pg';
import { NatsBus, type NatsBusOptions } from '@retrotro/bus-nats';
import { createAdapter, type AdapterOptions, type BusAdapter } from '@retrotro/socket.io-adapter';
const hub: LocalHub = { deliverLocal(_r: string, _f: Frame) {}, participantJoined() {}, participantLeft() {}, cancelPendingDisconnect() {} };
const bus: RelayBus = new RelayBus({ transport: new MemoryTransport(new MemoryBroker()) });
const started: Promise<void> = bus.start(hub);
const result: Promise<PublishResult> = bus.broadcastToRoom('r', { type: 't' });
const pgOptions: PgBusOptions = { connectionString: 'postgres://localhost/db' };
const natsOptions: NatsBusOptions = { servers: 'nats://localhost:4222' };
const buses: RelayBus[] = [new PgBus(pgOptions), new NatsBus(natsOptions)];
const sioOptions: AdapterOptions = { bus: { type: 'postgres', connectionString: 'postgres://localhost/db', prefix: 'app' }, heartbeatInterval: 5000 };
const factory: (nsp: unknown) => BusAdapter = createAdapter(sioOptions);
export { result, started, buses, factory };
`;

/** npm install all tarballs in one go (bus-core resolves locally), then run and typecheck. */
function tarballTest(tarballs, extraTypes, tmp) {
  const dir = join(tmp, 'scratch');
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
  const install = run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs, ...extraTypes], dir);
  if (!install.ok) return fail('tarball test', `npm install of the tarballs failed:\n${indent(install.out)}`);
  ok(`npm install of ${tarballs.length} tarballs${extraTypes.length ? ` (and ${extraTypes.join(', ')})` : ''}`);
  writeFileSync(join(dir, 'smoke.mjs'), SMOKE_JS);
  const smoke = run('node', ['smoke.mjs'], dir, 60_000);
  if (smoke.ok) ok('smoke test: imports, relay over MemoryTransport, PgBus and NatsBus constructed');
  else fail('tarball test', `smoke test failed:\n${indent(smoke.out)}`);
  writeFileSync(join(dir, 'check.ts'), TYPES_TS);
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        target: 'ES2022',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
        typeRoots: [join(root, 'node_modules/@types')],
      },
      files: ['check.ts'],
    }),
  );
  const tsc = run('node', [join(root, 'node_modules/typescript/bin/tsc'), '-p', '.'], dir);
  if (tsc.ok) ok('typecheck of the public types (NodeNext, skipLibCheck off)');
  else fail('tarball test', `typecheck failed:\n${indent(tsc.out)}`);
}

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), 'check-packages-'));
  try {
    const tarballs = [];
    const extraTypes = [];
    for (const pkg of publishablePackages()) {
      const name = pkg.manifest.name;
      console.log(`\n${name}`);
      try {
        const { tarball, unpacked } = pack(pkg, tmp);
        tarballs.push(tarball);
        const manifest = JSON.parse(readFileSync(join(unpacked, 'package.json'), 'utf8'));
        checkManifest(name, manifest);
        extraTypes.push(...checkTypeImports(name, manifest, unpacked));
        checkReadme(name, unpacked);
        await checkPublint(name, unpacked);
        checkTypes(name, tarball);
      } catch (err) {
        fail(name, err instanceof Error ? err.message : String(err));
      }
    }
    console.log('\ntarball test');
    if (failures.some((f) => f.includes('pnpm pack failed'))) fail('tarball test', 'skipped: a package could not be packed');
    else tarballTest(tarballs, extraTypes, tmp);
  } finally {
    if (process.env.KEEP_TMP) console.log(`\n(temp dir kept: ${tmp})`);
    else rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`\nsummary: ${failures.length} failure(s), ${warnings.length} warning(s)`);
  for (const f of failures) console.log(`  FAIL ${f.split('\n')[0]}`);
  for (const w of warnings) console.log(`  warn ${w}`);
  process.exitCode = failures.length ? 1 : 0;
}

await main();
