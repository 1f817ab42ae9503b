import { dictionary } from '@zxcvbn-ts/language-common'
import unhomoglyph from 'unhomoglyph'
import { messages } from './errors.js'
import { unicodeScripts } from './unicode-scripts.js'

// 49,000 leaked passwords, all lower case.
const commonPasswords = new Set(dictionary['passwords-common'])

/**
 * NFKC, then a full case fold: lower, upper, lower maps ß and ẞ to ss and ς to σ, as case folding does.
 * (Upper first would leave ẞ as ß.)
 */
const fold = (text: string) => text.normalize('NFKC').toLowerCase().toUpperCase().toLowerCase().normalize('NFKC')

/** What makes two usernames the same: `Admin`, `admin` and `ａｄｍｉｎ` share one key. */
export const usernameKey = fold

/**
 * What makes two usernames look the same: `admin` and `ꓮꓓꓟꓲꓠ` (Lisu), `ABE` and `ΑΒΕ` (Greek), `bob` and `B0B` share
 * one key. It is the UTS #39 confusable skeleton (NFD, each character mapped to its prototype in Unicode's
 * confusables.txt, NFD again) of the name in upper case: a username is one name in every case, so `admin` also
 * shows as `ADMIN`, which the Lisu letters imitate. Compared as it is, not case-folded: folding would make `mall`
 * of `MAIL` (whose I is drawn as an l).
 */
export const confusableKey = (username: string) =>
  unhomoglyph(username.normalize('NFKC').toUpperCase().normalize('NFD')).normalize('NFD')

/**
 * The same skeleton of the case-folded name, for look-alikes in lower case: `modern` and `rnodern`, `apple` and
 * `аррӏе` (Cyrillic). The Cyrillic palochka ӏ is drawn as a vertical stroke, as l is, but the confusables data of
 * unhomoglyph maps it to i: it is mapped to l first.
 */
export const lowerConfusableKey = (username: string) =>
  unhomoglyph(fold(username).replaceAll('\u04CF', 'l').normalize('NFD')).normalize('NFD')

/** The same skeleton of the name as it is shown, in its own cases: `paypaI` (a capital I) and `paypal`. */
export const shownConfusableKey = (username: string) =>
  unhomoglyph(username.normalize('NFKC').replaceAll('\u04CF', 'l').normalize('NFD')).normalize('NFD')

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

// Each letter or digit is of its real Unicode script; Common and Inherited ones (ASCII digits, combining marks)
// are of none.
const scripts = unicodeScripts.map((name) => [name, new RegExp(`^\\p{Script=${name}}$`, 'u')] as const)
const common = /^[\p{Script=Common}\p{Script=Inherited}]$/u
// Small capitals (ᴅ in aᴅmin), every letter whose Unicode name holds SMALL CAPITAL, and the modifier letters of
// the Latin, Greek and Cyrillic scripts and the spacing modifiers (ʼ, ˈ), which pass for the letters or marks they
// are shaped like. (Most modifier letters become plain ones under NFKC; those of other scripts, such as Japanese
// ー or Thai ๆ, are part of how words are written.)
const modifierLetter = /^\p{Lm}$/u
const modifierOfLatinLikeScripts = /^[\p{Script_Extensions=Latin}\p{Script_Extensions=Greek}\p{Script_Extensions=Cyrillic}\u{2B0}-\u{2FF}]$/u
const lookalikeLetter = (char: string) => smallCapitals.test(char) || (modifierLetter.test(char) && modifierOfLatinLikeScripts.test(char))
const smallCapitals = /[\u{262}\u{26A}\u{274}\u{276}\u{280}\u{281}\u{28F}\u{299}\u{29B}\u{29C}\u{29F}\u{2B6}\u{1D00}\u{1D01}\u{1D03}\u{1D04}\u{1D05}\u{1D06}\u{1D07}\u{1D0A}\u{1D0B}\u{1D0C}\u{1D0D}\u{1D0E}\u{1D0F}\u{1D10}\u{1D15}\u{1D18}\u{1D19}\u{1D1A}\u{1D1B}\u{1D1C}\u{1D20}\u{1D21}\u{1D22}\u{1D23}\u{1D26}\u{1D27}\u{1D28}\u{1D29}\u{1D2A}\u{1D2B}\u{1D7B}\u{1D7E}\u{1DA6}\u{1DA7}\u{1DAB}\u{1DB0}\u{1DB8}\u{2C7B}\u{A730}\u{A731}\u{A776}\u{A7AE}\u{A7AF}\u{A7FA}\u{AB46}\u{AB65}\u{10780}\u{10784}\u{10792}\u{10794}\u{10796}\u{1079C}\u{107A3}\u{107AA}\u{107B2}\u{1DF02}\u{1DF04}\u{1DF10}]/u
// UTS #39's "highly restrictive" level: one script, or Latin with the scripts of one CJK writing system.
const writingSystems = [['Latin', 'Han', 'Hiragana', 'Katakana'], ['Latin', 'Han', 'Bopomofo'], ['Latin', 'Han', 'Hangul']]

function scriptsOf (text: string): Set<string> {
  const found = new Set<string>()
  for (const char of text) {
    if (common.test(char)) continue
    // Every letter and digit of the username pattern has a script of the list.
    found.add(scripts.find(([, pattern]) => pattern.test(char))![0])
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

/** Whether registration would take this address. */
export const validEmail = (email: string) => emailPattern.test(email)

/** Field errors for a registration whose types and lengths are already valid; empty when it is fine. */
export function registrationErrors ({ username, email, password }: Registration): Record<string, string[]> {
  const errors: Record<string, string[]> = {}
  const add = (field: string, message: string) => { (errors[field] ??= []).push(message) }

  const normalisedUsername = username.normalize('NFKC')
  if (!usernamePattern.test(normalisedUsername) || invisible.test(normalisedUsername) || [...normalisedUsername].some(lookalikeLetter)) {
    add('username', 'Enter a valid username. This value may contain only letters, digits and . _ - characters.')
  } else if (!singleScript(normalisedUsername)) {
    add('username', 'Enter a valid username. Its letters must all be of one script.')
  }
  // NFKC can change the length: ㎇ becomes GB, e + combining acute becomes é.
  const length = [...normalisedUsername].length
  if (length < 3) add('username', 'Ensure this field has at least 3 characters.')
  if (length > 150) add('username', 'Ensure this field has no more than 150 characters.')
  if (!validEmail(email)) {
    add('email', messages.invalidEmail)
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
