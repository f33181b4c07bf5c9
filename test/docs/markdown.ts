/**
 * Just enough Markdown for the docs tests: the documentation files, their fenced code blocks
 * (with the `<!-- file: path -->` marker before a block), their headings' anchors as GitHub
 * makes them, their relative links, and the shell commands of their `sh` blocks.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** README.md and every `docs/**\/*.md`, relative to `root`. */
export function docFiles(root: string): string[] {
  const out = ['README.md'];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = path.join(dir, e.name);
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith('.md')) out.push(rel);
    }
  };
  if (fs.existsSync(path.join(root, 'docs'))) walk('docs');
  return out;
}

export interface CodeBlock {
  /** The info string: `ts`, `json`, `sh`, or '' */
  lang: string;
  code: string;
  /** The path of a `<!-- file: path -->` marker on the line before the fence. */
  file?: string;
  /** 1-based line of the opening fence. */
  line: number;
}

/** Every fenced code block, in order. */
export function codeBlocks(md: string): CodeBlock[] {
  const lines = md.split('\n');
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    const marker = /^<!--\s*file:\s*(\S+)\s*-->$/.exec(lines[start - 1]?.trim() ?? '');
    blocks.push({ lang: open[1] ?? '', code: `${body.join('\n')}\n`, file: marker?.[1], line: start + 1 });
  }
  return blocks;
}

/** The text outside fenced code blocks (links and headings live there). */
function prose(md: string): string {
  return md.replace(/^```[^\n]*\n[\s\S]*?^```\s*$/gm, '');
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  return heading
    .replace(/`/g, '')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** The anchors a file offers: one per heading, with GitHub's `-1`, `-2` for repeats. */
export function anchors(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose(md).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = slug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Every Markdown link target outside code: `[text](target)`. */
export function links(md: string): string[] {
  const text = prose(md).replace(/`[^`\n]*`/g, '');
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
}

/** Whether a link leaves the repository (a URL or an e-mail address). */
export const isExternal = (target: string): boolean => /^[a-z][a-z0-9+.-]*:/i.test(target);

/**
 * The commands of a shell block: continuation lines joined, comments and trailing `&`
 * dropped, each split into words with shell quoting (single and double quotes).
 */
export function shellCommands(code: string): string[][] {
  const joined = code.replace(/\\\n\s*/g, ' ');
  const out: string[][] = [];
  for (const raw of joined.split('\n')) {
    const line = raw.replace(/\s+#\s.*$/, '').replace(/&\s*$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    out.push(words(line));
  }
  return out;
}

function words(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | null = null;
  let has = false;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = null;
      else cur += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      has = true;
    } else if (/\s/.test(ch)) {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
    } else cur += ch;
  }
  if (has || cur) out.push(cur);
  return out;
}
