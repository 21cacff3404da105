/**
 * The bench's PostgreSQL: a project's container, psql with room for long statements, and a
 * database grown to a size (shared by bench:deploy and bench:dump).
 */
import { composeContainers, type Harness, psqlInContainer, runOverSsh } from "../../test/harness";

/** The project's PostgreSQL container, null when it has none. */
export async function postgresOf(project: string): Promise<string | null> {
  const [name] = await composeContainers(project, "postgres");
  return name ?? null;
}

export async function mustPostgres(project: string): Promise<string> {
  const name = await postgresOf(project);
  if (!name) throw new Error(`${project} has no postgres container`);
  return name;
}

/** psql in a container, with room for the bench's long statements (filling GiBs). */
export function psql(container: string, sql: string): Promise<string> {
  return psqlInContainer(container, sql, { timeoutMs: 30 * 60_000 });
}

/**
 * Grows a database with pseudo-random text (md5 hex, which compresses about as well as real
 * application data; no repeated strings that would flatter compression) until it is at least
 * `gib` GiB, and returns its size in bytes.
 */
export async function fillDatabase(
  label: string,
  container: string,
  gib: number,
  say: (text: string) => void,
): Promise<number> {
  await psql(
    container,
    "CREATE TABLE IF NOT EXISTS bench_payload (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, owner text NOT NULL, payload text NOT NULL)",
  );
  const size = async () =>
    Number(await psql(container, "SELECT pg_database_size(current_database())"));
  let bytes = await size();
  const chunk = Math.max(2000, Math.min(500_000, Math.round((gib * 2 ** 30) / 250 / 4)));
  while (bytes < gib * 2 ** 30) {
    await psql(
      container,
      `INSERT INTO bench_payload SELECT g, now() - g * interval '1 second', 'user-' || (g % 100000), md5(g::text) || md5((g + 1)::text) || md5((g * 3)::text) || md5((g * 7)::text) || md5((g * 11)::text) || md5((g * 13)::text) FROM generate_series(coalesce((SELECT max(id) FROM bench_payload), 0) + 1, coalesce((SELECT max(id) FROM bench_payload), 0) + ${chunk}) g`,
    );
    bytes = await size();
    say(`  ${label}: ${(bytes / 2 ** 30).toFixed(3)} of ${gib} GiB`);
  }
  await psql(container, "VACUUM ANALYZE bench_payload");
  return size();
}

/**
 * The size in bytes of a dump our deploy kept, once the deploy's background compression of it
 * has ended: a directory dump that still holds a table's raw data file (N.dat) is waited for,
 * so that the size is the one it keeps and the next run does not share the CPU with gzip. A
 * single-file dump, or one kept at backup.compressionLevel 0 (`compressed` false), is measured
 * at once.
 */
export async function dumpSize(h: Harness, dump: string, compressed = true): Promise<number> {
  const deadline = Date.now() + 15 * 60_000;
  const ask = async (command: string) => {
    const r = await runOverSsh(h, command);
    if (r.code !== 0) throw new Error(`${command} failed (exit ${r.code}): ${r.stderr}`);
    return r.stdout.trim();
  };
  while (
    compressed &&
    Number(await ask(`find ${dump} -name '*.dat' ! -name toc.dat | wc -l`)) > 0
  ) {
    if (Date.now() > deadline) throw new Error(`${dump} was still being compressed after 15 min`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return Number(await ask(`du -sb ${dump} | cut -f 1`));
}
