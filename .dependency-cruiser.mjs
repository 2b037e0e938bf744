/**
 * The layers of src/, checked by `npm run lint` (dependency-cruiser). Each folder may import
 * only the folders listed for it: lower layers never import higher ones, so there are no folder
 * cycles. See docs/adr/0005-one-shape-for-the-control-loop.md for what lives where.
 *
 *   api → model → batch → cache / metrics / rabbit / kube → controllers / export → sharding → operator → cli
 *   (util, config and log are leaves anyone may use)
 */
const allowed = {
  util: [],
  api: ['util'],
  model: ['api', 'util'],
  config: ['api', 'model', 'util'],
  log: ['config', 'util'],
  batch: ['api', 'model', 'util'],
  cache: ['api', 'model', 'batch', 'util', 'log'],
  metrics: ['api', 'model', 'batch', 'cache', 'util'],
  rabbit: ['api', 'model', 'batch', 'metrics', 'util', 'log'],
  kube: ['api', 'model', 'metrics', 'util', 'log'],
  controllers: ['api', 'model', 'batch', 'cache', 'metrics', 'rabbit', 'kube', 'util', 'log', 'config'],
  export: ['api', 'model', 'batch', 'rabbit', 'util'],
  sharding: ['api', 'model', 'controllers', 'kube', 'metrics', 'util', 'log'],
  operator: ['api', 'model', 'batch', 'cache', 'metrics', 'rabbit', 'kube', 'controllers', 'sharding', 'util', 'log', 'config'],
  cli: ['api', 'model', 'batch', 'cache', 'metrics', 'rabbit', 'kube', 'controllers', 'export', 'sharding', 'operator', 'util', 'log', 'config'],
};
const folders = Object.keys(allowed);

export default {
  forbidden: [
    ...folders.map((from) => ({
      name: `layer-${from}`,
      comment: `src/${from} may import only ${allowed[from].length ? allowed[from].map((f) => `src/${f}`).join(', ') : 'packages'}`,
      severity: 'error',
      from: { path: `^src/${from}/` },
      to: { path: '^src/([^/]+)/', pathNot: [`^src/(${[from, ...allowed[from]].join('|')})/`] },
    })),
    {
      name: 'unknown-folder',
      comment: 'every folder of src/ has a place in the layers above',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^src/([^/]+)/', pathNot: [`^src/(${folders.join('|')})/`] },
    },
    {
      name: 'no-circular',
      comment: 'modules import each other in one direction only',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
