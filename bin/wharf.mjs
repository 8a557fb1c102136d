#!/usr/bin/env node
// Entry point for `npx wharf`: run the TypeScript CLI through tsx, no build step. This is the
// composition root: the application's scenarios (scenarios/) register themselves into the core's
// registry before the CLI (src/) runs; src/ never imports them.
import { register } from 'tsx/esm/api';
register();
await import('../scenarios/index.ts');
await import('../src/cli/main.ts');
