import type { FastifySchemaValidationError } from 'fastify/types/schema.js'

/** Ajv's errors as DRF's `{field: [messages]}`; errors about the body as a whole go under `non_field_errors`. */
export function validationErrors (errors: FastifySchemaValidationError[]): Record<string, string[]> {
  const fields: Record<string, string[]> = {}
  for (const error of errors) {
    const params = error.params as Record<string, unknown>
    const field = error.keyword === 'required'
      ? String(params.missingProperty)
      : error.instancePath.split('/')[1] || 'non_field_errors'
    const messages = (fields[field] ??= [])
    const message = describe(error.keyword, params, String(error.message))
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
