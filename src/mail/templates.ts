import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'

export const mailKinds = ['password_reset', 'email_verify', 'email_change', 'email_change_notice', 'password_changed', 'account_deleted'] as const
export type MailKind = typeof mailKinds[number]

/** Values a template may use; a missing or empty one renders as nothing. */
export interface MailVariables {
  app_name: string
  username: string
  /** The address the mail goes to. */
  email: string
  /** The link built from PASSWORD_RESET_URL / EMAIL_VERIFY_URL / EMAIL_CHANGE_URL; absent without one. */
  link?: string
  /** 6-digit code */
  code?: string
  /** The link token (base64url), for clients that have no link template. */
  token?: string
  /** How long the link token lasts, e.g. "1 hour" or "30 minutes". */
  expires_in?: string
  /** How long the code lasts, e.g. "15 minutes". */
  code_expires_in?: string
  /** For email_change_notice: the new address, masked (like "a***@example.com"). */
  new_email?: string
}

export interface RenderedMail { subject: string, text: string, html: string }

export interface Templates { render: (kind: MailKind, variables: MailVariables) => RenderedMail }

type Variable = keyof MailVariables
type Part = 'subject' | 'text' | 'html'

/** Every key of MailVariables, no more and no less (the Record type checks both). */
const variableSet: Record<Variable, true> = {
  app_name: true,
  username: true,
  email: true,
  link: true,
  code: true,
  token: true,
  expires_in: true,
  code_expires_in: true,
  new_email: true
}
const variables = Object.keys(variableSet) as Variable[]
const isVariable = (name: string): name is Variable => (variables as string[]).includes(name)

const extensions: Record<Part, string> = { subject: '.subject.txt', text: '.txt', html: '.html' }
/** The file names a templates directory may hold (three per kind), and what each replaces. */
const files = new Map<string, { kind: MailKind, part: Part }>(mailKinds.flatMap((kind) =>
  (Object.keys(extensions) as Part[]).map((part) => [`${kind}${extensions[part]}`, { kind, part }] as const)
))

// ---------------------------------------------------------------------------------------------------
// The template language: {{name}}, {{#name}}…{{/name}} (when non-empty), {{^name}}…{{/name}} (when empty).

type Node = string | { name: Variable } | { name: Variable, inverted: boolean, children: Node[] }

const tag = /\{\{(.*?)\}\}/g
const tagInside = /^\s*([#^/]?)\s*([A-Za-z0-9_]+)\s*$/
/** A section tag alone on its line takes the whole line with it, as in mustache. */
const standalone = /^[ \t]*(\{\{\s*[#^/][^{}\n]*\}\})[ \t]*(?:\r?\n|$)/gm

/** Parses a template; throws an Error saying what is wrong (the caller adds the file's name). */
function parse (source: string, part: Part): Node[] {
  if (part === 'subject') {
    source = source.replace(/[\r\n]+$/, '')
    if (/[\r\n]/.test(source)) throw new Error('a subject must be a single line')
  }
  const root: Node[] = []
  const open: Array<{ name?: Variable, tag?: string, children: Node[] }> = [{ children: root }]
  const literal = (text: string) => {
    const at = text.indexOf('{{')
    if (at !== -1) throw new Error(`"{{" without a matching "}}" in ${JSON.stringify(text.slice(at, at + 30))}`)
    if (text !== '') open.at(-1)!.children.push(text)
  }
  source = source.replace(standalone, '$1')
  let last = 0
  for (const match of source.matchAll(tag)) {
    literal(source.slice(last, match.index))
    last = match.index + match[0].length
    const inside = tagInside.exec(match[1]!)
    if (inside === null) throw new Error(`malformed tag ${match[0]}`)
    const sigil = inside[1]!
    const name = inside[2]!
    if (!isVariable(name)) throw new Error(`unknown variable "${name}" in ${match[0]}; known are ${variables.join(', ')}`)
    const current = open.at(-1)!
    if (sigil === '/') {
      if (current.name !== name) {
        throw new Error(current.tag === undefined ? `${match[0]} closes no section` : `${match[0]} closes ${current.tag}`)
      }
      open.pop()
    } else if (sigil === '') {
      current.children.push({ name })
    } else {
      const section = { name, inverted: sigil === '^', children: [] }
      current.children.push(section)
      open.push({ ...section, tag: match[0] })
    }
  }
  literal(source.slice(last))
  const unclosed = open.at(-1)!.tag
  if (unclosed !== undefined) throw new Error(`unclosed section ${unclosed}`)
  return root
}

const htmlEscapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }
const inserters: Record<Part, (value: string) => string> = {
  subject: (value) => value.replace(/[\r\n]/g, ''),
  text: (value) => value,
  html: (value) => value.replace(/[&<>"']/g, (character) => htmlEscapes[character]!)
}

function render (nodes: Node[], values: MailVariables, insert: (value: string) => string): string {
  let out = ''
  for (const node of nodes) {
    if (typeof node === 'string') {
      out += node
      continue
    }
    const value = String(values[node.name] ?? '')
    if (!('children' in node)) out += insert(value)
    else if ((value === '') === node.inverted) out += render(node.children, values, insert)
  }
  return out
}

// ---------------------------------------------------------------------------------------------------
// The built-in templates.

const monospace = "font-family:Menlo,Consolas,'Courier New',monospace;"
const paragraph = '<p style="margin:0 0 16px;">'
const smallPrint = '<p style="margin:24px 0 0;font-size:14px;color:#52525b;">'

const htmlDocument = (title: string, body: string): string => `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
</head>
<body style="margin:0;padding:24px 12px;background-color:#f4f4f5;">
<div style="max-width:560px;margin:0 auto;padding:32px 24px;border-radius:8px;background-color:#ffffff;font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Helvetica,Arial,sans-serif;font-size:16px;line-height:1.5;color:#18181b;">
${paragraph}Hello {{username}},</p>
${body}</div>
</body>
</html>
`

/** password_reset, email_verify and email_change: a link, a code and a token that each do the same thing. */
interface Confirmation {
  subject: string
  /** What was asked, one sentence. */
  intro: string
  /** "To …, open this link". */
  action: string
  /** The button's label. */
  button: string
  /** What to do when it was not you. */
  ignore: string
}

const confirmation = ({ subject, intro, action, button, ignore }: Confirmation): Record<Part, string> => ({
  subject,
  text: `Hello {{username}},

${intro}

{{#link}}
To ${action}, open this link{{#expires_in}} within {{expires_in}}{{/expires_in}}:

{{link}}

{{/link}}
{{#code}}
{{#link}}Or enter{{/link}}{{^link}}To ${action}, enter{{/link}} this code in {{app_name}}{{#code_expires_in}} within {{code_expires_in}}{{/code_expires_in}}:

Code: {{code}}

{{/code}}
{{#token}}
If your app asks for a token instead, use this one{{#expires_in}} (valid for {{expires_in}}){{/expires_in}}:

Token: {{token}}

{{/token}}
${ignore}
`,
  html: htmlDocument(subject, `${paragraph}${intro}</p>
{{#link}}
${paragraph}To ${action}, use this button{{#expires_in}} within {{expires_in}}{{/expires_in}}:</p>
<p style="margin:24px 0;"><a href="{{link}}" style="display:inline-block;padding:12px 24px;border-radius:6px;background-color:#2563eb;color:#ffffff;font-weight:bold;text-decoration:none;">${button}</a></p>
<p style="margin:0 0 16px;font-size:14px;color:#52525b;">If the button does not work, open this link: <a href="{{link}}" style="color:#2563eb;word-break:break-all;">{{link}}</a></p>
{{/link}}
{{#code}}
<p style="margin:0 0 8px;">{{#link}}Or enter{{/link}}{{^link}}To ${action}, enter{{/link}} this code in {{app_name}}{{#code_expires_in}} within {{code_expires_in}}{{/code_expires_in}}:</p>
<p style="margin:0 0 24px;${monospace}font-size:32px;font-weight:bold;letter-spacing:6px;">{{code}}</p>
{{/code}}
{{#token}}
<p style="margin:0 0 16px;font-size:12px;color:#71717a;word-break:break-all;">If your app asks for a token instead, use this one{{#expires_in}} (valid for {{expires_in}}){{/expires_in}}: <code style="${monospace}">{{token}}</code></p>
{{/token}}
${smallPrint}${ignore}</p>
`)
})

/** email_change_notice, password_changed and account_deleted: a notice, and what to do when it was not you. */
const notice = (subject: string, body: string[], notYou: string): Record<Part, string> => ({
  subject,
  text: `Hello {{username}},

${body.join('\n\n')}

${notYou}
`,
  html: htmlDocument(subject, `${body.map((text) => `${paragraph}${text}</p>\n`).join('')}${paragraph}<strong>${notYou}</strong></p>
`)
})

const builtInSources: Record<MailKind, Record<Part, string>> = {
  password_reset: confirmation({
    subject: 'Reset your password for {{app_name}}',
    intro: 'We received a request to reset the password of your {{app_name}} account.',
    action: 'choose a new password',
    button: 'Choose a new password',
    ignore: 'If you did not ask for this, ignore this email: your password stays as it is.'
  }),
  email_verify: confirmation({
    subject: 'Confirm your email address for {{app_name}}',
    intro: 'Please confirm that {{email}} is the email address of your {{app_name}} account.',
    action: 'confirm it',
    button: 'Confirm my email address',
    ignore: 'If you did not ask for this, ignore this email.'
  }),
  email_change: confirmation({
    subject: 'Confirm your new email address for {{app_name}}',
    intro: 'A change of the email address of your {{app_name}} account to {{email}} was requested.',
    action: 'confirm your new address',
    button: 'Confirm my new email address',
    ignore: 'If you did not ask for this, ignore this email: your address stays as it is.'
  }),
  email_change_notice: notice('Your email address for {{app_name}} is being changed', [
    'A change of the email address of your {{app_name}} account{{#new_email}} to {{new_email}}{{/new_email}} was requested. This notice goes to your current address, {{email}}.',
    'If it was you, there is nothing more to do here.'
  ], 'If it was not you, someone else may know your password: change your password right away and contact support.'),
  password_changed: notice('Your password for {{app_name}} was changed', [
    'The password of your {{app_name}} account was changed, and every session was signed out: sign in again with your new password.'
  ], 'If it was not you, reset your password right away and contact support.'),
  account_deleted: notice('Your account for {{app_name}} was deleted', [
    'Your account for {{app_name}} and everything it held were deleted, and every session was signed out. This is the last mail you get from us about it.'
  ], 'If you did not ask for this, contact support.')
}

/** Parsed once, at import: a mistake in them fails every test. */
const builtIn = Object.fromEntries(mailKinds.map((kind) => [kind, {
  subject: parse(builtInSources[kind].subject, 'subject'),
  text: parse(builtInSources[kind].text, 'text'),
  html: parse(builtInSources[kind].html, 'html')
}])) as Record<MailKind, Record<Part, Node[]>>

// ---------------------------------------------------------------------------------------------------

/** The built-in templates, each file of `dir` (when given) replacing one of them. */
export async function loadTemplates (dir?: string): Promise<Templates> {
  const compiled = Object.fromEntries(mailKinds.map((kind) => [kind, { ...builtIn[kind] }])) as Record<MailKind, Record<Part, Node[]>>
  if (dir !== undefined) {
    let names: string[]
    try {
      names = await readdir(dir)
    } catch (error) {
      throw new Error(`Mail templates: the directory ${dir} cannot be read (${(error as Error).message})`)
    }
    const problems: string[] = []
    for (const name of names.sort()) {
      const path = join(dir, name)
      const file = files.get(name)
      if (file === undefined) {
        // Subdirectories are left alone: a Kubernetes ConfigMap volume keeps its files in "..data/".
        if ((await stat(path).catch(() => undefined))?.isDirectory() !== true) {
          problems.push(`${path}: not a template's file name; allowed are ${[...files.keys()].join(', ')}`)
        }
        continue
      }
      try {
        const source = (await readFile(path, 'utf8')).replace(/^\uFEFF/, '')
        compiled[file.kind][file.part] = parse(source, file.part)
      } catch (error) {
        problems.push(`${path}: ${(error as Error).message}`)
      }
    }
    if (problems.length > 0) throw new Error(`Mail templates in ${dir}:\n${problems.map((problem) => `  ${problem}`).join('\n')}`)
  }
  return {
    render (kind, values) {
      const template = compiled[kind]
      return {
        subject: render(template.subject, values, inserters.subject),
        text: render(template.text, values, inserters.text),
        html: render(template.html, values, inserters.html)
      }
    }
  }
}
