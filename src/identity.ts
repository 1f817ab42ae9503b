import { dictionary } from '@zxcvbn-ts/language-common'

// 49,000 leaked passwords, all lower case.
const commonPasswords = new Set(dictionary['passwords-common'])

/** NFKC, then a full case fold (upper then lower maps ß to ss and ς to σ, as case folding does). */
const fold = (text: string) => text.normalize('NFKC').toUpperCase().toLowerCase().normalize('NFKC')

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
  if (!usernamePattern.test(normalisedUsername)) {
    add('username', 'Enter a valid username. This value may contain only letters, digits and . _ - characters.')
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
