/**
 * The container image, without a container engine: the Dockerfile is checked for what the issue
 * asks (multi-stage, Node 24 slim, production dependencies only, non-root, the entry point), and
 * its runtime layout is rebuilt in a temporary directory outside the repository — compiled dist/,
 * package.json, bin/ and only the production packages of package-lock.json (what
 * `npm prune --omit=dev` keeps) — then its entry point is run exactly as the image runs it
 * (`node dist/cli/main.js ...`, working directory /app, uid 65532 when the test runs as root).
 * The flags deploy/ passes must be ones the CLI accepts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const ROOT = new URL('../../', import.meta.url).pathname;
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');
const pkg = JSON.parse(read('package.json')) as { version: string; dependencies: Record<string, string>; devDependencies: Record<string, string> };

// ---- the Dockerfile ----------------------------------------------------------------------------

interface Stage {
  from: string;
  name?: string;
  lines: string[];
}

function stages(dockerfile: string): { args: Record<string, string>; stages: Stage[] } {
  const args: Record<string, string> = {};
  const out: Stage[] = [];
  const logical = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  for (const line of logical) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) {
      const image = from[1]!.replace(/\$\{(\w+)\}/g, (_, a: string) => args[a] ?? '');
      out.push({ from: image, ...(from[2] ? { name: from[2] } : {}), lines: [] });
    } else if (out.length === 0 && /^ARG\s/i.test(line)) {
      const [k, v = ''] = line.slice(4).trim().split('=');
      args[k!] = v;
    } else out.at(-1)?.lines.push(line);
  }
  return { args, stages: out };
}

describe('Dockerfile', () => {
  const { stages: [build, runtime, ...rest] } = stages(read('Dockerfile'));

  it('builds in one Node 24 stage and runs in another, with production dependencies only', () => {
    expect(rest).toEqual([]);
    expect(build?.from).toBe('node:24-bookworm-slim');
    expect(runtime?.from).toMatch(/^(node:24-bookworm-slim|gcr\.io\/distroless\/nodejs24-debian12(:nonroot)?)$/);
    const run = build!.lines.filter((l) => l.startsWith('RUN')).join('\n');
    expect(run).toMatch(/npm ci\b/);
    expect(run).toMatch(/npm run build\b/);
    expect(run).toMatch(/npm prune --omit=dev\b/);
    // The build stage copies what `npm run build` reads.
    const copied = build!.lines.filter((l) => l.startsWith('COPY')).join(' ');
    for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src']) expect(copied).toContain(f);
  });

  it('runs as uid 65532 with the entry point node dist/cli/main.js', () => {
    const lines = runtime!.lines;
    const copies = lines.filter((l) => l.startsWith('COPY'));
    expect(copies.some((l) => /--from=build\s+\S*node_modules/.test(l))).toBe(true);
    expect(copies.some((l) => /--from=build\s+\S*dist/.test(l))).toBe(true);
    expect(copies.some((l) => /\bpackage\.json\b/.test(l))).toBe(true);
    expect(copies.some((l) => /\bbin\b/.test(l))).toBe(true);
    // From the build context: package.json and bin/ only (no sources, no tests).
    const fromContext = copies.filter((l) => !l.includes('--from=')).flatMap((l) => l.split(/\s+/).slice(1, -1));
    expect(fromContext.sort()).toEqual(['bin', 'package.json']);
    expect(lines.find((l) => l.startsWith('USER'))).toMatch(/^USER 65532(:65532)?$/);
    expect(lines.filter((l) => l.startsWith('USER')).length).toBe(1);
    expect(lines.find((l) => l.startsWith('WORKDIR'))).toBe('WORKDIR /app');
    expect(JSON.parse(lines.find((l) => l.startsWith('ENTRYPOINT'))!.slice('ENTRYPOINT'.length))).toEqual(['node', 'dist/cli/main.js']);
    expect(JSON.parse(lines.find((l) => l.startsWith('CMD'))!.slice('CMD'.length))).toEqual(['operator', '--leader-elect']);
  });

  it('.dockerignore keeps the build context small without dropping what the build copies', () => {
    const patterns = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const p of ['**/node_modules', 'dist', '.git', '.local']) expect(patterns).toContain(p);
    const needed = ['package.json', 'package-lock.json', '.npmrc', 'tsconfig.json', 'tsconfig.build.json', 'src', 'bin'];
    const glob = (p: string) => new RegExp(`^${p.replace(/\./g, '\\.').replace(/\*\*\//g, '(.*/)?').replace(/\*/g, '[^/]*')}$`);
    for (const f of needed) expect(patterns.filter((p) => glob(p).test(f)), f).toEqual([]);
  });
});

// ---- the runtime layout, run as the image runs it ----------------------------------------------

describe('the image entry point', () => {
  let app = '';
  const base = mkdtempSync(join(tmpdir(), 'rabbitbatch-image-'));
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  beforeAll(() => {
    app = join(base, 'app'); // outside the repository: no node_modules above it to fall back on
    mkdirSync(app);
    // dist/: what `npm run build` (tsc -p tsconfig.build.json) writes.
    const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(app, 'dist')], {
      encoding: 'utf8',
    });
    if (tsc.status !== 0) throw new Error(`npm run build fails, so the image would not build:\n${tsc.stdout}${tsc.stderr}`);
    copyFileSync(join(ROOT, 'package.json'), join(app, 'package.json'));
    cpSync(join(ROOT, 'bin'), join(app, 'bin'), { recursive: true });
    // node_modules/: the lockfile's packages that are not dev-only, as `npm prune --omit=dev` leaves them.
    const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { dev?: boolean }> };
    for (const [path, entry] of Object.entries(lock.packages)) {
      if (!path.startsWith('node_modules/') || entry.dev || !existsSync(join(ROOT, path))) continue;
      if (existsSync(join(app, path))) continue; // nested under a package already copied
      mkdirSync(dirname(join(app, path)), { recursive: true });
      // Hard links when the file system allows (fast, no space), a copy otherwise.
      if (spawnSync('cp', ['-al', join(ROOT, path), join(app, path)]).status !== 0) cpSync(join(ROOT, path), join(app, path), { recursive: true });
    }
    for (const dir of [base, app]) chmodSync(dir, 0o755);
  }, 240_000);

  /** `docker run <image> ...args`: node dist/cli/main.js in /app, as uid 65532, NODE_ENV=production. */
  const run = (args: string[]) => {
    // As root, only setpriv gives the image's non-root user: never fall back to running as root.
    const asNonRoot = process.getuid?.() === 0;
    if (asNonRoot && spawnSync('setpriv', ['--version']).status !== 0) throw new Error('setpriv is missing (util-linux): run `bash hack/test-tools.sh` or `apt-get install util-linux`; the image test does not run as root');
    const argv = [process.execPath, 'dist/cli/main.js', ...args];
    const res = asNonRoot
      ? spawnSync('setpriv', ['--reuid=65532', '--regid=65532', '--clear-groups', ...argv], { cwd: app, encoding: 'utf8', env: { PATH: '/usr/bin:/bin', NODE_ENV: 'production', HOME: '/' } })
      : spawnSync(argv[0]!, argv.slice(1), { cwd: app, encoding: 'utf8', env: { PATH: '/usr/bin:/bin', NODE_ENV: 'production', HOME: '/' } });
    return { status: res.status, out: `${res.stdout}${res.stderr}` };
  };

  it('runs on Node 24 like the image', () => {
    expect(process.versions.node.split('.')[0]).toBe('24');
  });

  it('the layout has production packages only', () => {
    const modules = readdirSync(join(app, 'node_modules'));
    for (const dev of ['typescript', 'vitest', 'tsx', 'eslint']) expect(modules, dev).not.toContain(dev);
    for (const dep of Object.keys(pkg.dependencies)) expect(existsSync(join(app, 'node_modules', dep)), dep).toBe(true);
  });

  it('every package the compiled code imports is a production dependency', () => {
    const builtin = new Set(['node']);
    const files = (readdirSync(join(app, 'dist'), { recursive: true }) as string[]).filter((f) => f.endsWith('.js'));
    expect(files).toContain(join('cli', 'main.js'));
    const used = new Set<string>();
    for (const f of files) {
      const js = readFileSync(join(app, 'dist', f), 'utf8');
      for (const m of js.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"]([^'"./][^'"]*)['"]/g)) {
        const spec = m[1]!;
        if (spec.startsWith('node:') || builtin.has(spec)) continue;
        used.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
    }
    expect(used.size).toBeGreaterThan(3);
    for (const name of used) expect(Object.keys(pkg.dependencies), `${name} is imported by dist/ but is not in dependencies`).toContain(name);
  });

  it('node dist/cli/main.js answers --version and --help', () => {
    const version = run(['--version']);
    expect(version.status, version.out).toBe(0);
    expect(version.out.trim()).toBe(pkg.version);
    const help = run(['--help']);
    expect(help.status, help.out).toBe(0);
    expect(help.out).toMatch(/\boperator\b/);
  });

  it('the operator command accepts every flag deploy/ passes it', () => {
    const help = run(['operator', '--help']);
    expect(help.status, help.out).toBe(0);
    const flags = new Set<string>();
    for (const dir of ['deploy/default', 'deploy/overlays/all']) {
      const out = execFileSync('kubectl', ['kustomize', join(ROOT, dir)], { encoding: 'utf8' });
      for (const doc of parseAllDocuments(out)) {
        const o = doc.toJS() as { kind: string; spec?: { template?: { spec?: { containers?: { args?: string[] }[] } } } };
        if (o.kind !== 'Deployment') continue;
        const args = o.spec!.template!.spec!.containers![0]!.args!;
        expect(args[0]).toBe('operator');
        for (const a of args.slice(1)) flags.add(a.split('=')[0]!);
      }
    }
    expect([...flags].sort()).toEqual(['--health-probe-bind-address', '--leader-elect', '--metrics-bind-address', '--sharding']);
    for (const f of flags) expect(help.out, `rabbitbatch operator --help does not list ${f}`).toContain(f);
  });

  it('bin/rabbitbatch.js runs the compiled CLI (no tsx in the image)', () => {
    const res = spawnSync(process.execPath, ['bin/rabbitbatch.js', '--version'], { cwd: app, encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
    expect(res.status, res.stderr).toBe(0);
    expect(res.stdout.trim()).toBe(pkg.version);
  });
});
