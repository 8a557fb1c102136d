#!/usr/bin/env node
// Entry point for `npx wharf`: run the TypeScript CLI through tsx, no build step. This is the
// composition root: the application's runbooks (scripts/) and scenarios (scenarios/) register
// themselves into the core's registries before the CLI (src/) runs; src/ never imports them.
import { register } from 'tsx/esm/api';
register();
await import('../scripts/index.ts');
await import('../scenarios/index.ts');
await import('../src/cli/main.ts');
