// ONNX Runtime's CPU speed on an exported model, printed as one JSON object with the fields
// `chnet bench speed --json` prints for inference (median_ms, min_ms, max_ms, images_per_s).
//   node tools/ortref/ort_speed.js MODEL.onnx --batch 16 --size 352 [--threads 2] [--warmup 2] [--repeat 5]
// Needs onnxruntime-node (npm install --ignore-scripts onnxruntime-node; NODE_PATH may point at
// its node_modules). Full graph optimisation: ONNX Runtime folds batch norm and fuses conv+ReLU.
'use strict';
const ort = require('onnxruntime-node');

function flags(argv) {
  const a = { batch: 16, size: 352, threads: 2, warmup: 2, repeat: 5, model: '' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (!k.startsWith('--')) { a.model = k; continue; }
    const name = k.slice(2);
    if (!(name in a)) throw new Error(`unknown flag ${k}`);
    a[name] = Number(argv[++i]);
    if (!Number.isInteger(a[name]) || a[name] < 0) throw new Error(`${k}: want a whole number, got ${argv[i]}`);
  }
  if (!a.model) throw new Error('no model file given');
  return a;
}

async function main() {
  const a = flags(process.argv.slice(2));
  const sess = await ort.InferenceSession.create(a.model, {
    intraOpNumThreads: a.threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential',
  });
  const n = a.batch * 3 * a.size * a.size;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.sin(i * 12.9898) * 0.5; // any values: work does not depend on them
  const feeds = { [sess.inputNames[0]]: new ort.Tensor('float32', data, [a.batch, 3, a.size, a.size]) };
  const times = [];
  for (let i = 0; i < a.warmup + a.repeat; i++) {
    const t0 = process.hrtime.bigint();
    await sess.run(feeds);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (i >= a.warmup) times.push(ms);
  }
  times.sort((x, y) => x - y);
  const median = times[Math.floor(times.length / 2)];
  console.log(JSON.stringify({
    mode: 'infer', backend: 'onnxruntime', version: require('onnxruntime-node/package.json').version,
    threads: a.threads, batch: a.batch, size: a.size, median_ms: median, min_ms: times[0],
    max_ms: times[times.length - 1], images_per_s: a.batch * 1000 / median,
  }));
}

main().catch((e) => { console.error(`ort_speed: ${e.message}`); process.exit(1); });
