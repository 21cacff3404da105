import { z } from "zod";

/** The schema a default, an optional or a pipe (transform) wraps, if any. */
export function wrapped(schema: z.core.$ZodType): z.core.$ZodType | undefined {
  if (schema instanceof z.ZodDefault || schema instanceof z.ZodOptional) {
    return schema.unwrap() as z.core.$ZodType;
  }
  if (schema instanceof z.ZodPipe) return schema.in as z.core.$ZodType;
  return undefined;
}

/** The schema inside defaults, optionals and transforms: what a key's value must look like. */
export function unwrap(schema: z.core.$ZodType): z.core.$ZodType {
  let current = schema;
  for (let next = wrapped(current); next !== undefined; next = wrapped(current)) current = next;
  return current;
}

/** Whether an object key with this schema may be left out (it is optional or has a default). */
export function acceptsAbsence(schema: z.core.$ZodType): boolean {
  return schema._zod.optin !== undefined;
}
