import { getTableConfig } from 'drizzle-orm/pg-core'
import t from 'tap'
import { mailOutbox, mailTokens, sessions, tokens, users } from '../../../src/db/schema.js'

t.test('sessions and tokens belong to a user and go with it', async (t) => {
  const references = (table: typeof sessions | typeof tokens | typeof mailTokens) => getTableConfig(table).foreignKeys.map((key) => {
    const { columns, foreignTable } = key.reference()
    return `${columns.map((c) => c.name).join()} -> ${getTableConfig(foreignTable).name} on delete ${key.onDelete}`
  }).sort()
  t.same(references(sessions), ['user_id -> users on delete cascade'])
  t.same(references(tokens), ['session_id -> sessions on delete cascade', 'user_id -> users on delete cascade'])
  t.same(references(mailTokens), ['user_id -> users on delete cascade'], 'so do mailed tokens')
})

t.test('the indexes the hot queries use', async (t) => {
  t.same(getTableConfig(sessions).indexes.map((index) => index.config.name), ['sessions_user_id_idx'])
  t.same(getTableConfig(tokens).indexes.map((index) => index.config.name), ['tokens_session_id_idx', 'tokens_user_id_idx', 'tokens_revoked_access_expires_at_idx'])
  t.same(getTableConfig(tokens).checks.map((check) => check.name), ['tokens_type_check'])
  t.same(getTableConfig(users).columns.filter((column) => column.isUnique).map((column) => column.uniqueName), [
    'users_username_key_unique', 'users_username_skeleton_unique', 'users_username_skeleton_lower_unique', 'users_username_skeleton_shown_unique', 'users_email_key_unique'
  ])
})

t.test('the indexes of the mail tables and of cohorts', async (t) => {
  t.same(getTableConfig(mailTokens).indexes.map((index) => index.config.name), ['mail_tokens_user_id_kind_idx'])
  t.same(getTableConfig(mailTokens).checks.map((check) => check.name), ['mail_tokens_kind_check'])
  t.same(getTableConfig(mailOutbox).indexes.map((index) => index.config.name), ['mail_outbox_queued_idx', 'mail_outbox_recipient_idx'], 'the worker looks up queued mails by when they are due; a deletion, a user\'s mails')
  t.same(getTableConfig(mailOutbox).checks.map((check) => check.name), ['mail_outbox_status_check'])
  t.same(getTableConfig(users).indexes.map((index) => index.config.name), ['users_tag_idx'])
})
