// The output of Django's `manage.py dumpdata`, read as a stream: one JSON array of objects, on one line unless
// --indent was given, some 300 bytes a user, so 300 MB for a million users. JSON.parse would need it whole.

/** A dumpdata file that is not one JSON array of objects. */
export class DumpdataError extends Error {
  override name = 'DumpdataError'
}

const openBrace = 0x7B
const closeBrace = 0x7D
const quote = 0x22
const backslash = 0x5C
const whitespace = new Set([' ', '\n', '\r', '\t'])

/**
 * The elements of the top-level array of a dumpdata stream, one at a time, each parsed by JSON.parse from its
 * own text: memory holds one element and one chunk, whatever the file's size. Elements must be objects, which
 * is all dumpdata writes. Chunks must be strings (a stream with setEncoding('utf8'), which never splits a
 * character between chunks).
 */
export async function * readDumpdata (chunks: AsyncIterable<string>): AsyncGenerator<unknown> {
  // Where we are: before the '[', between elements (expecting an object, a ',' or the ']'), in an object, after ']'.
  let state = 'start' as 'start' | 'between' | 'object' | 'end'
  let depth = 0
  let inString = false
  let escaped = false
  // The text of the element being read: the part of earlier chunks, then the current chunk from `from`.
  let pending = ''
  let expectComma = false
  for await (const chunk of chunks) {
    let from = 0
    for (let i = 0; i < chunk.length; i++) {
      const code = chunk.charCodeAt(i)
      if (state === 'object') {
        if (inString) {
          if (escaped) escaped = false
          else if (code === backslash) escaped = true
          else if (code === quote) inString = false
        } else if (code === quote) {
          inString = true
        } else if (code === openBrace || code === 0x5B) {
          depth++
        } else if (code === closeBrace || code === 0x5D) {
          depth--
          if (depth === 0) {
            const text = pending + chunk.slice(from, i + 1)
            pending = ''
            state = 'between'
            expectComma = true
            yield parse(text)
          }
        }
        continue
      }
      const char = chunk[i] as string
      if (whitespace.has(char)) continue
      if (state === 'start' && char === '[') {
        state = 'between'
      } else if (state === 'between' && char === ',' && expectComma) {
        expectComma = false
      } else if (state === 'between' && char === '{' && !expectComma) {
        state = 'object'
        depth = 1
        from = i
      } else if (state === 'between' && char === ']') {
        state = 'end'
      } else {
        throw new DumpdataError(`not a dumpdata file: unexpected ${JSON.stringify(char)}`)
      }
    }
    if (state === 'object') pending += chunk.slice(from)
  }
  if (state !== 'end') throw new DumpdataError('not a dumpdata file: it ends before its closing ]')
}

function parse (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new DumpdataError(`not a dumpdata file: ${(error as Error).message}`)
  }
}
