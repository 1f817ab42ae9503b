import { dictionary } from '@zxcvbn-ts/language-common'

// 49,000 leaked passwords, all lower case.
const commonPasswords = new Set(dictionary['passwords-common'])

/**
 * NFKC, then a full case fold: lower, upper, lower maps ß and ẞ to ss and ς to σ, as case folding does.
 * (Upper first would leave ẞ as ß.)
 */
const fold = (text: string) => text.normalize('NFKC').toLowerCase().toUpperCase().toLowerCase().normalize('NFKC')

/** What makes two usernames the same: `Admin`, `admin` and `ａｄｍｉｎ` share one key. */
export const usernameKey = fold

export const emailKey = (email: string) => email.toLowerCase()

/** The email as stored: the domain is case-insensitive, so it is lower-cased; the local part is kept. */
export function normaliseEmail (email: string): string {
  const at = email.lastIndexOf('@')
  return email.slice(0, at) + email.slice(at).toLowerCase()
}

// Letters (each with up to four combining marks, enough for any script and too few to stack into
// a tower), decimal digits, '.', '_' and '-'. This leaves out '@', spaces, controls, and format
// characters such as bidi overrides and zero-width joiners.
const usernamePattern = /^(?:\p{L}\p{M}{0,4}|\p{Nd}|[._-])+$/u
// Letters and marks that render as nothing (Hangul fillers, variation selectors, the combining grapheme
// joiner): two names differing only by one would look the same.
const invisible = /\p{Default_Ignorable_Code_Point}/u

// Unicode scripts a letter or digit may belong to; Common and Inherited ones (ASCII digits, combining
// marks) belong to none. A script not listed counts as 'Other'.
const scripts = ['Latin', 'Greek', 'Cyrillic', 'Armenian', 'Georgian', 'Hebrew', 'Arabic', 'Syriac', 'Thaana', 'Nko',
  'Devanagari', 'Bengali', 'Gurmukhi', 'Gujarati', 'Oriya', 'Tamil', 'Telugu', 'Kannada', 'Malayalam', 'Sinhala',
  'Thai', 'Lao', 'Tibetan', 'Myanmar', 'Khmer', 'Mongolian', 'Ethiopic', 'Cherokee', 'Canadian_Aboriginal',
  'Tifinagh', 'Javanese', 'Balinese', 'Han', 'Hiragana', 'Katakana', 'Bopomofo', 'Hangul', 'Yi']
  .map((name) => [name, new RegExp(`^\\p{Script=${name}}$`, 'u')] as const)
const common = /^[\p{Script=Common}\p{Script=Inherited}]$/u
// UTS #39's "highly restrictive" level: one script, or Latin with the scripts of one CJK writing system.
const writingSystems = [['Latin', 'Han', 'Hiragana', 'Katakana'], ['Latin', 'Han', 'Bopomofo'], ['Latin', 'Han', 'Hangul']]

function scriptsOf (text: string): Set<string> {
  const found = new Set<string>()
  for (const char of text) {
    if (common.test(char)) continue
    found.add(scripts.find(([, pattern]) => pattern.test(char))?.[0] ?? 'Other')
  }
  return found
}

/** A name of one script, so that no letter can pass for one of another (a Cyrillic а in paypal). */
function singleScript (text: string): boolean {
  const found = scriptsOf(text)
  return found.size <= 1 || writingSystems.some((system) => [...found].every((script) => system.includes(script)))
}
// The WHATWG form of a valid email address, plus a dot in the domain.
const emailPattern = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/

export interface Registration {
  username: string
  email: string
  password: string
}

/** Field errors for a registration whose types and lengths are already valid; empty when it is fine. */
export function registrationErrors ({ username, email, password }: Registration): Record<string, string[]> {
  const errors: Record<string, string[]> = {}
  const add = (field: string, message: string) => { (errors[field] ??= []).push(message) }

  const normalisedUsername = username.normalize('NFKC')
  if (!usernamePattern.test(normalisedUsername) || invisible.test(normalisedUsername)) {
    add('username', 'Enter a valid username. This value may contain only letters, digits and . _ - characters.')
  } else if (!singleScript(normalisedUsername)) {
    add('username', 'Enter a valid username. Its letters must all be of one script.')
  }
  // NFKC can change the length: ㎇ becomes GB, e + combining acute becomes é.
  const length = [...normalisedUsername].length
  if (length < 3) add('username', 'Ensure this field has at least 3 characters.')
  if (length > 150) add('username', 'Ensure this field has no more than 150 characters.')
  if (!emailPattern.test(email)) {
    add('email', 'Enter a valid email address.')
  }

  const foldedPassword = fold(password)
  if (commonPasswords.has(password.normalize('NFC').toLowerCase())) {
    add('password', 'This password is too common.')
  }
  if (foldedPassword.includes(fold(username))) {
    add('password', 'The password is too similar to the username.')
  }
  const localPart = email.slice(0, Math.max(email.lastIndexOf('@'), 0))
  if ([...localPart].length >= 4 && foldedPassword.includes(fold(localPart))) {
    add('password', 'The password is too similar to the email address.')
  }
  return errors
}
