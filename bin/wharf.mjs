#!/usr/bin/env node
// Entry point for `npx wharf`: run the TypeScript CLI through tsx, no build step. The runbooks of
// scripts/ register themselves first (src/ only knows the registry).
import { register } from 'tsx/esm/api';
register();
await import('../scripts/index.ts');
await import('../src/cli/main.ts');
