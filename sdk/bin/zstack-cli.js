#!/usr/bin/env node
// zstack-cli: runs the built CLI (dist/, made by `npm run build`, always present in the published package). In a
// source checkout without a build it runs the TypeScript sources through tsx (a devDependency of the workspace).
import { existsSync } from 'node:fs';

const built = new URL('../dist/esm/cli/main.js', import.meta.url);
let main;
if (existsSync(built)) ({ main } = await import(built.href));
else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
process.exitCode = await main();
