import type { FastifySchemaValidationError } from 'fastify/types/schema.js'

/** Ajv's errors as DRF's `{field: [messages]}`; errors about the body as a whole go under `non_field_errors`. */
export function validationErrors (errors: FastifySchemaValidationError[]): Record<string, string[]> {
  // No prototype: a field may be named `constructor`, which a plain object already has.
  const fields: Record<string, string[]> = Object.create(null)
  for (const error of errors) {
    const params = error.params as Record<string, unknown>
    // A key refused by its name (propertyNames): Ajv reports it twice, once with the key on the error and
    // once in its params. The error is about the key, so it goes under its name.
    const refusedKey = (error as { propertyName?: string }).propertyName ??
      (error.keyword === 'propertyNames' ? String(params.propertyName) : undefined)
    const field = error.keyword === 'required'
      ? String(params.missingProperty)
      : refusedKey ?? (error.instancePath.split('/')[1] || 'non_field_errors')
    const messages = (fields[field] ??= [])
    const message = refusedKey !== undefined ? 'This key is not allowed.' : describe(error.keyword, params, String(error.message))
    if (!messages.includes(message)) messages.push(message)
  }
  return fields
}

function describe (keyword: string, params: Record<string, unknown>, fallback: string): string {
  switch (keyword) {
    case 'required': return 'This field is required.'
    case 'type': return `Must be of type ${String(params.type)}.`
    case 'minLength': return `Ensure this field has at least ${String(params.limit)} characters.`
    case 'maxLength': return `Ensure this field has no more than ${String(params.limit)} characters.`
    default: return `${fallback[0]?.toUpperCase()}${fallback.slice(1)}.`
  }
}
