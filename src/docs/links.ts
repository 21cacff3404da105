import { dirname, join, normalize } from "node:path";

/**
 * The relative links of the docs pages, checked the way GitHub renders them: a link must name a
 * file of the repository, and an `#anchor` must name a heading of its page. Pure functions over
 * page texts; the caller says which files exist.
 */

/** A link or image target on a page, with its 1-based line. */
export interface MarkdownLink {
  readonly line: number;
  readonly target: string;
}

/** What the check may ask of the repository; paths are relative to its root. */
export interface RepositoryFiles {
  readonly exists: (path: string) => boolean;
  readonly read: (path: string) => string;
}

/**
 * GitHub's anchor for a heading's text, as github-slugger makes it: lower case, every character
 * that is not a letter, mark, digit, connector (`_`), hyphen or space dropped, then each space
 * turned into a hyphen.
 *
 * @example githubSlug("Runbook: `alembic downgrade`") === "runbook-alembic-downgrade"
 */
export function githubSlug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
    .replace(/ /g, "-");
}

/**
 * The anchors of a page's ATX headings (`#` to `######`), in order, outside fenced code. A
 * repeated slug gets `-1`, `-2`, ... as on GitHub. Setext headings (`===` / `---` underlines)
 * are not recognized; the docs do not use them.
 */
export function headingAnchors(markdown: string): string[] {
  const occurrences = new Map<string, number>();
  const anchors: string[] = [];
  for (const { text } of proseLines(markdown)) {
    const heading = /^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/.exec(text);
    if (!heading) continue;
    const base = githubSlug(headingText(heading[1] ?? ""));
    let slug = base;
    while (occurrences.has(slug)) {
      const count = (occurrences.get(base) ?? 0) + 1;
      occurrences.set(base, count);
      slug = `${base}-${count}`;
    }
    occurrences.set(slug, 0);
    anchors.push(slug);
  }
  return anchors;
}

/**
 * Every inline link and image target (`[text](target)`, `![alt](target)`) and every reference
 * definition (`[id]: target`) of a page, outside fenced code and code spans.
 */
export function markdownLinks(markdown: string): MarkdownLink[] {
  const links: MarkdownLink[] = [];
  const inline =
    /!?\[(?:[^[\]\\]|\\.|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g;
  for (const { line, text } of proseLines(markdown)) {
    const prose = withoutCodeSpans(text);
    for (const match of prose.matchAll(inline)) {
      links.push({ line, target: (match[1] ?? "").replace(/^<|>$/g, "") });
    }
    const definition = /^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/.exec(prose);
    if (definition) links.push({ line, target: (definition[1] ?? "").replace(/^<|>$/g, "") });
  }
  return links;
}

/**
 * The broken relative links of `pages` (paths relative to the repository root), one message
 * each: `<page>:<line>: <target>: <why>`. Links with a scheme (`https:`, `mailto:`) are not
 * checked; an anchor is checked only when it points into a Markdown page.
 */
export function brokenLinks(pages: readonly string[], files: RepositoryFiles): string[] {
  const anchorsOf = new Map<string, ReadonlySet<string>>();
  const anchors = (page: string) => {
    let found = anchorsOf.get(page);
    if (!found) {
      found = new Set(headingAnchors(files.read(page)));
      anchorsOf.set(page, found);
    }
    return found;
  };
  const broken: string[] = [];
  for (const page of pages) {
    for (const { line, target } of markdownLinks(files.read(page))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
      const hash = target.indexOf("#");
      const path = decodeURIComponent(hash === -1 ? target : target.slice(0, hash));
      const anchor = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1));
      const where = `${page}:${line}: ${target}`;
      const file = path === "" ? page : normalize(join(dirname(page), path));
      if (path !== "" && (file.startsWith("..") || !files.exists(file))) {
        broken.push(`${where}: no file ${file}`);
        continue;
      }
      if (anchor === undefined || !file.endsWith(".md")) continue;
      if (!anchors(file).has(anchor)) broken.push(`${where}: no heading #${anchor} in ${file}`);
    }
  }
  return broken;
}

/** The lines of a page outside fenced code blocks, with their 1-based numbers. */
function proseLines(markdown: string): { line: number; text: string }[] {
  const lines: { line: number; text: string }[] = [];
  let fence: string | undefined;
  markdown.split("\n").forEach((text, index) => {
    const marker = /^\s*(`{3,}|~{3,})/.exec(text)?.[1];
    if (fence === undefined) {
      if (marker) fence = marker;
      else lines.push({ line: index + 1, text });
    } else if (marker && marker[0] === fence[0] && marker.length >= fence.length) {
      if (text.trim() === marker) fence = undefined;
    }
  });
  return lines;
}

/** A heading's text as GitHub renders it: code spans keep their content, links their text. */
function headingText(raw: string): string {
  return raw
    .replace(/(`+)(.*?)\1/g, "$2")
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/<[^>]+>/g, "");
}

/** The line with each code span blanked, so that a link shown as code is no link. */
function withoutCodeSpans(text: string): string {
  return text.replace(/(`+)(?:(?!\1)[\s\S])*?\1/g, (span) => " ".repeat(span.length));
}
