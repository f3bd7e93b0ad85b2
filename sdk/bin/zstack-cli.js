#!/usr/bin/env node
// zstack-cli: runs the TypeScript sources through tsx (the workspace runs TS directly; no build step).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main();
