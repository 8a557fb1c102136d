// The layout tells the pipeline: src/ is the library, scripts/ (runbooks), scenarios/, bench/ and
// test/ are its applications. GIVEN every module of src/ WHEN its imports are resolved THEN none
// lands outside src/ in the project (node_modules and node: built-ins are fine).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve('.');
const files = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );

/** Relative specifiers of static imports, re-exports and dynamic imports with a literal. */
const importsOf = (text: string): string[] =>
  [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm)].map(
    (m) => m[1]!,
  );

describe('layering: src/ never imports the applications around it', () => {
  const modules = files(join(ROOT, 'src'));

  it('finds the modules and their imports (the scan itself works)', () => {
    expect(modules.length).toBeGreaterThan(50);
    expect(importsOf(readFileSync(join(ROOT, 'src/cli/program.ts'), 'utf8'))).toContain('./exit.ts');
  });

  it('no import from src/ resolves into scripts/, scenarios/, bench/ or test/', () => {
    const bad: string[] = [];
    for (const f of modules)
      for (const spec of importsOf(readFileSync(f, 'utf8'))) {
        const target = relative(ROOT, resolve(dirname(f), spec));
        if (!target.startsWith('src/')) bad.push(`${relative(ROOT, f)} imports ${target}`);
      }
    expect(bad).toEqual([]);
  });
});
