import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  brokenLinks,
  githubSlug,
  headingAnchors,
  markdownLinks,
  type RepositoryFiles,
} from "../../src/docs/links";
import { REPO_ROOT } from "../support/program";

describe("githubSlug makes GitHub's anchor of a heading", () => {
  const cases: readonly (readonly [string, string])[] = [
    ["Tests", "tests"],
    ["The deploy (SSH, docker compose)", "the-deploy-ssh-docker-compose"],
    ["Who can read what (threat model)", "who-can-read-what-threat-model"],
    ["Runbook: `alembic downgrade`", "runbook-alembic-downgrade"],
    ["4. Preview and apply, per stack", "4-preview-and-apply-per-stack"],
    ["What `pulumi up` registers per host", "what-pulumi-up-registers-per-host"],
    ["`clicky-delivery:deploy`", "clicky-deliverydeploy"],
    [
      "Why this beats the spec's procedure (sections 4 and 7)",
      "why-this-beats-the-specs-procedure-sections-4-and-7",
    ],
    ["Committing the files, and the token it takes", "committing-the-files-and-the-token-it-takes"],
    ["snake_case and kebab-case", "snake_case-and-kebab-case"],
    ["Größe ändern", "größe-ändern"],
    ["a  b", "a--b"],
  ];
  for (const [heading, slug] of cases) {
    test(`${JSON.stringify(heading)} -> #${slug}`, () => assert.equal(githubSlug(heading), slug));
  }
});

describe("headingAnchors", () => {
  test("numbers repeated headings -1, -2 as GitHub does", () => {
    assert.deepEqual(headingAnchors("# Drift\n## Drift\n### Drift\n## Limits\n"), [
      "drift",
      "drift-1",
      "drift-2",
      "limits",
    ]);
  });
  test("ignores lines that start with # inside fenced code, and closing #s", () => {
    const page =
      "# Setup\n\n```sh\n# not a heading\n```\n\n   ```sh\n   # nor this\n   ```\n## Done ##\n";
    assert.deepEqual(headingAnchors(page), ["setup", "done"]);
  });
  test("uses the text of links in a heading", () => {
    assert.deepEqual(headingAnchors("## See [the deploy](deploy.md)\n"), ["see-the-deploy"]);
  });
});

describe("markdownLinks", () => {
  test("finds links, images and reference definitions with their lines", () => {
    const page =
      'Read [the deploy](docs/deploy.md#limits).\n\n![plot](plot.png "title")\n[ref]: docs/x.md\n';
    assert.deepEqual(markdownLinks(page), [
      { line: 1, target: "docs/deploy.md#limits" },
      { line: 3, target: "plot.png" },
      { line: 4, target: "docs/x.md" },
    ]);
  });
  test("skips links shown as code and inside fenced code", () => {
    const page = "`[a](b.md)` is code\n```\n[c](d.md)\n```\n";
    assert.deepEqual(markdownLinks(page), []);
  });
});

describe("brokenLinks", () => {
  const repository = (pages: Record<string, string>): RepositoryFiles => ({
    exists: (path) => path in pages,
    read: (path) => pages[path] ?? assert.fail(`read of ${path}`),
  });
  const pages = {
    "README.md": "# App\n\nSee [the deploy](docs/deploy.md#limits) and [setup](#app).\n",
    "docs/deploy.md":
      "# The deploy\n\n## Limits\n\nBack to the [README](../README.md#app); [site](https://example.com/x#y).\n",
  };

  test("passes links to existing files and headings, and ignores https links", () => {
    assert.deepEqual(brokenLinks(Object.keys(pages), repository(pages)), []);
  });
  test("names a link to a missing file", () => {
    const broken = { ...pages, "README.md": "# App\n\n[ops](docs/operations.md)\n" };
    assert.deepEqual(brokenLinks(["README.md"], repository(broken)), [
      "README.md:3: docs/operations.md: no file docs/operations.md",
    ]);
  });
  test("names an anchor that matches no heading of the target page", () => {
    const broken = { ...pages, "README.md": "# App\n\n[x](docs/deploy.md#limit) [y](#apps)\n" };
    assert.deepEqual(brokenLinks(["README.md"], repository(broken)), [
      "README.md:3: docs/deploy.md#limit: no heading #limit in docs/deploy.md",
      "README.md:3: #apps: no heading #apps in README.md",
    ]);
  });
});

test("every relative link of README.md and docs/*.md names a file and a heading that exist", () => {
  const pages = [
    "README.md",
    ...readdirSync(join(REPO_ROOT, "docs"))
      .filter((name) => name.endsWith(".md"))
      .map((name) => `docs/${name}`),
  ];
  assert.ok(pages.length > 5, `only ${pages.length} pages found`);
  const files: RepositoryFiles = {
    exists: (path) => existsSync(join(REPO_ROOT, path)),
    read: (path) => readFileSync(join(REPO_ROOT, path), "utf8"),
  };
  assert.deepEqual(brokenLinks(pages, files), []);
});
