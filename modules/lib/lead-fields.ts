/**
 * Maps a submitted payload onto Bitrix lead fields. Shared by `create-lead` and `update-lead`;
 * not a module.
 */
import { str } from './bitrix-client';

/**
 * The lead fields a payload provides: `name` → `NAME`, `lastName` → `LAST_NAME`,
 * `email` → `EMAIL`, `phone` → `PHONE`, `comment` → `COMMENTS`. Absent values are left out.
 */
export function leadFieldsFromPayload(payload: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  const name = str(payload.name);
  const lastName = str(payload.lastName);
  const email = str(payload.email);
  const phone = str(payload.phone);
  const comment = str(payload.comment);
  if (name) fields.NAME = name;
  if (lastName) fields.LAST_NAME = lastName;
  if (email) fields.EMAIL = [{ VALUE: email, VALUE_TYPE: 'WORK' }];
  if (phone) fields.PHONE = [{ VALUE: phone, VALUE_TYPE: 'WORK' }];
  if (comment) fields.COMMENTS = comment;
  return fields;
}
