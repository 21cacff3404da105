/**
 * GitHub's numeric id from a lookup result's `id`. Under synth's mocks the lookup returns a
 * marker such as `lookup:user/alice` instead of inventing an id; it is passed through as-is so
 * the synthesized inputs show which lookup `pulumi up` will make.
 */
export function githubNumericId(id: string): number {
  return /^\d+$/.test(id) ? Number(id) : (id as unknown as number);
}
