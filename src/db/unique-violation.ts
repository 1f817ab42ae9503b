/** The constraint a unique violation broke, from postgres.js or PGlite, under drizzle's wrapper. */
export function uniqueViolation (error: unknown): string | undefined {
  const cause = (error as { cause?: { code?: string, constraint_name?: string, constraint?: string } }).cause
  return cause?.code === '23505' ? cause.constraint_name ?? cause.constraint : undefined
}
