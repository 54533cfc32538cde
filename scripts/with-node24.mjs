// Runs a script with the Node 24 that `npm i` put in node_modules (the action's runtime, node24), falling back to
// the current Node when it is already 24 or newer.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const local = path.resolve('node_modules/node/bin/node');
const major = Number(process.versions.node.split('.')[0]);
const node = major >= 24 || !existsSync(local) ? process.execPath : local;
if (node === process.execPath && major < 24) {
  console.error(`warning: running on Node ${process.versions.node}; run npm install to get Node 24 (the action's runtime)`);
}
const r = spawnSync(node, process.argv.slice(2), { stdio: 'inherit' });
process.exit(r.status ?? 1);
