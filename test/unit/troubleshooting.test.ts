// Every user-facing error has a stable code, and every code has its entry in docs/TROUBLESHOOTING.md (symptom,
// cause, fix); the doc has no entry for a code the source no longer uses. The source is read with TypeScript's own
// parser and type checker, so multi-line calls, ternaries and codes handed over by helpers (dumpAdvice, s3Error ...)
// all count: a code is any string literal that TypeScript types as an ErrorCode.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, test } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DOC = path.join(ROOT, 'docs/TROUBLESHOOTING.md');
const CODE_FORMAT = /^[a-z]+(?:-[a-z0-9]+)+$/;
const CLASSES: Record<string, number> = { BackupError: 2, ConfigurationError: 1 }; // the options argument's index

interface Scan {
  /** `file:line new X(...)` of each construction without a code that is always set. */
  missing: string[];
  /** code -> where it is written. */
  codes: Map<string, string[]>;
}

function compilerOptions(): ts.CompilerOptions {
  const parsed = ts.getParsedCommandLineOfConfigFile(path.join(ROOT, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined });
  return { ...parsed!.options, noEmit: true };
}

/** Scans TypeScript sources (file name -> text; files not given are read from disk, as the libraries are). */
function scanSources(files: Map<string, string>): Scan {
  const options = compilerOptions();
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, lang, ...rest) => (files.has(name) ? ts.createSourceFile(name, files.get(name)!, lang, true) : getSourceFile.call(host, name, lang, ...rest));
  host.fileExists = (name) => files.has(name) || fileExists.call(host, name);
  host.readFile = (name) => files.get(name) ?? readFile.call(host, name);
  const program = ts.createProgram([...files.keys()], options, host);
  const checker = program.getTypeChecker();

  // ErrorCode's members (one template literal type per area): a literal whose contextual type is made of them is a code.
  const errorsFile = program.getSourceFiles().find((f) => /\/src\/errors\.ts$/.test(f.fileName));
  const alias = errorsFile?.statements.find((s): s is ts.TypeAliasDeclaration => ts.isTypeAliasDeclaration(s) && s.name.text === 'ErrorCode');
  if (!alias) throw new Error('src/errors.ts does not declare the ErrorCode type');
  const codeType = checker.getTypeAtLocation(alias.name);
  const members = new Set(codeType.isUnion() ? codeType.types : [codeType]);
  const isErrorCode = (t: ts.Type | undefined): boolean => {
    if (!t) return false;
    const parts = (t.isUnion() ? t.types : [t]).filter((x) => !(x.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Null)));
    return parts.length > 0 && parts.every((x) => members.has(x));
  };

  const scan: Scan = { missing: [], codes: new Map() };
  const note = (code: string, where: string): void => {
    const at = scan.codes.get(code) ?? [];
    if (!at.includes(where)) at.push(where);
    scan.codes.set(code, at);
  };
  for (const sf of program.getSourceFiles()) {
    if (!files.has(sf.fileName)) continue;
    const where = (n: ts.Node): string => `${path.relative(ROOT, sf.fileName)}:${sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1}`;
    const visit = (n: ts.Node): void => {
      if (ts.isStringLiteralLike(n) && isErrorCode(checker.getContextualType(n))) note(n.text, where(n));
      if (ts.isNewExpression(n) && ts.isIdentifier(n.expression) && n.expression.text in CLASSES) {
        const options = n.arguments?.[CLASSES[n.expression.text]!];
        const prop =
          options && ts.isObjectLiteralExpression(options)
            ? options.properties.find((p): p is ts.PropertyAssignment | ts.ShorthandPropertyAssignment => (ts.isPropertyAssignment(p) || ts.isShorthandPropertyAssignment(p)) && p.name.getText(sf) === 'code')
            : undefined;
        const type = prop ? checker.getTypeAtLocation(ts.isPropertyAssignment(prop) ? prop.initializer : prop.name) : undefined;
        // A code that may be undefined (an optional field passed on) is no code.
        const always = type !== undefined && !(type.isUnion() ? type.types : [type]).some((x) => x.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Any | ts.TypeFlags.Unknown));
        if (!always) scan.missing.push(`${where(n)} new ${n.expression.text}(${n.arguments?.[0]?.getText(sf).slice(0, 80) ?? ''}`);
        // Literal types that reach the code without an ErrorCode context (const c = 'x'; { code: c }).
        for (const t of type ? (type.isUnion() ? type.types : [type]) : []) if (t.isStringLiteral()) note(t.value, where(n));
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return scan;
}

/** code -> the entry's text: the doc's level-4 headings that are codes, each up to the next heading. */
function docEntries(markdown: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^#### (\S+)\s*$/.exec(lines[i]!);
    if (!m) continue;
    let j = i + 1;
    while (j < lines.length && !/^#{1,4} /.test(lines[j]!)) j++;
    out.set(m[1]!, (out.has(m[1]!) ? '\0duplicate\0' : '') + lines.slice(i + 1, j).join('\n'));
  }
  return out;
}

/** Everything wrong, one line each. */
function problems(scan: Scan, entries: Map<string, string>): string[] {
  const out = scan.missing.map((m) => `no code: ${m}`);
  for (const [code, where] of scan.codes) {
    if (!CODE_FORMAT.test(code)) out.push(`code "${code}" (${where[0]}) is not kebab-case`);
    if (!entries.has(code)) out.push(`code ${code} (${where.join(', ')}) has no "#### ${code}" entry in docs/TROUBLESHOOTING.md`);
  }
  for (const [code, body] of entries) {
    if (!scan.codes.has(code)) out.push(`docs/TROUBLESHOOTING.md has an entry for ${code}, which no error in src uses`);
    if (body.startsWith('\0duplicate\0')) out.push(`docs/TROUBLESHOOTING.md has two entries for ${code}`);
    for (const part of ['Symptom', 'Cause', 'Fix']) if (!body.includes(`**${part}**`)) out.push(`the entry ${code} has no **${part}**`);
  }
  return out;
}

function sourceFiles(): Map<string, string> {
  const dir = path.join(ROOT, 'src');
  const files = new Map<string, string>();
  for (const f of readdirSync(dir, { recursive: true }) as string[]) {
    if (f.endsWith('.ts') && !f.endsWith('.d.ts')) files.set(path.join(dir, f), readFileSync(path.join(dir, f), 'utf8'));
  }
  return files;
}

describe('docs/TROUBLESHOOTING.md and the error codes in src', () => {
  test('every BackupError and ConfigurationError has a code, every code an entry, every entry a code', () => {
    const scan = scanSources(sourceFiles());
    // The scan found the errors (about 120 sites, about 80 codes): an empty scan would pass anything.
    expect(scan.codes.size).toBeGreaterThan(50);
    expect(problems(scan, docEntries(readFileSync(DOC, 'utf8')))).toEqual([]);
  }, 60_000);
});

describe('the check itself (it can fail)', () => {
  // Synthetic sources beside the real errors.ts, each case in its own file; one program for all of them.
  const errorsTs = path.join(ROOT, 'src/errors.ts');
  const cases: Record<string, string> = {
    literal: `throw new BackupError('m', 'h', { code: 'dump-alpha' });`,
    multiline: `throw new BackupError(\n  \`m \${1}\`,\n  'h',\n  { cause: 1,\n    code: 'dump-beta' },\n);`,
    config: `throw new ConfigurationError('m', { code: 'config-gamma' });`,
    noCode: `throw new BackupError('m', 'h');`,
    noOptions: `throw new ConfigurationError('m');`,
    optional: `declare const o: { code?: ErrorCode }; throw new BackupError('m', undefined, { code: o.code });`,
    fallback: `declare const o: { code?: ErrorCode }; throw new BackupError('m', undefined, { code: o.code ?? 'verify-delta' });`,
    helper: `function advice(x: boolean): { code: ErrorCode; hint: string } { return x ? { code: 'pg-epsilon', hint: 'a' } : { code: 'pg-zeta', hint: 'b' }; }\nconst a = advice(true); throw new BackupError('m', a.hint, { code: a.code });`,
    tuple: `const [code, hint]: [ErrorCode, string] = Math.random() > 0.5 ? ['storage-eta', 'a'] : ['storage-theta', 'b']; throw new BackupError('m', hint, { code });`,
    constant: `const c = 'restore-iota'; throw new BackupError('m', 'h', { code: c });`,
    notACode: `const outputs = { code: 'restore-seconds' }; const s: string = 'target-database-url'; void outputs; void s;`,
    shouting: `throw new BackupError('m', 'h', { code: 'dump-Kappa' });`,
  };
  const files = new Map<string, string>([[errorsTs, readFileSync(errorsTs, 'utf8')]]);
  for (const [name, body] of Object.entries(cases)) {
    files.set(path.join(ROOT, `src/__case_${name}.ts`), `import { BackupError, ConfigurationError, type ErrorCode } from './errors.js';\nexport function f(): void {\n${body}\n}\n`);
  }
  const scan = scanSources(files);
  const codesOf = (name: string): string[] => [...scan.codes].filter(([, w]) => w.some((x) => x.includes(`__case_${name}.ts`))).map(([c]) => c).sort();
  const missingIn = (name: string): boolean => scan.missing.some((m) => m.includes(`__case_${name}.ts`));

  test.each([
    ['literal', ['dump-alpha'], false],
    ['multiline', ['dump-beta'], false],
    ['config', ['config-gamma'], false],
    ['noCode', [], true],
    ['noOptions', [], true],
    ['optional', [], true],
    ['fallback', ['verify-delta'], false],
    ['helper', ['pg-epsilon', 'pg-zeta'], false],
    ['tuple', ['storage-eta', 'storage-theta'], false],
    ['constant', ['restore-iota'], false],
    ['notACode', [], false],
    ['shouting', ['dump-Kappa'], false],
  ])('%s: codes %j, reported as missing a code: %s', (name, codes, missing) => {
    expect(codesOf(name)).toEqual(codes);
    expect(missingIn(name)).toBe(missing);
  });

  const entry = (code: string, parts = ['Symptom', 'Cause', 'Fix']): string => `#### ${code}\n\n${parts.map((p) => `**${p}**: x`).join('\n\n')}\n`;
  const one: Scan = { missing: [], codes: new Map([['dump-alpha', ['src/a.ts:1']]]) };
  test.each([
    ['an entry per code', one, entry('dump-alpha'), []],
    ['a code without an entry', one, '# Troubleshooting\n\n### dump-alpha\n', ['code dump-alpha (src/a.ts:1) has no "#### dump-alpha" entry in docs/TROUBLESHOOTING.md']],
    ['an entry without a code', one, entry('dump-alpha') + entry('dump-gone'), ['docs/TROUBLESHOOTING.md has an entry for dump-gone, which no error in src uses']],
    ['an entry without its fix', one, entry('dump-alpha', ['Symptom', 'Cause']), ['the entry dump-alpha has no **Fix**']],
    ['two entries for one code', one, entry('dump-alpha') + entry('dump-alpha'), ['docs/TROUBLESHOOTING.md has two entries for dump-alpha']],
    ['a site without a code', { missing: ['src/a.ts:2 new BackupError(`x`'], codes: one.codes }, entry('dump-alpha'), ['no code: src/a.ts:2 new BackupError(`x`']],
    ['a code that is not kebab-case', { missing: [], codes: new Map([['dump-Kappa', ['src/a.ts:3']]]) }, entry('dump-Kappa'), ['code "dump-Kappa" (src/a.ts:3) is not kebab-case']],
  ])('%s', (_what, s, doc, expected) => {
    expect(problems(s, docEntries(doc))).toEqual(expected);
  });
});
