/** A MariaDB database of a test's own, on the test server: its URL, and how to drop it. */
import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';
import { requireMysql } from './services';

export async function tempMysqlDatabase(prefix: string): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = await requireMysql();
  const db = `${prefix}_${randomBytes(5).toString('hex')}`;
  const conn = await createConnection({ uri: admin });
  try {
    await conn.query(`CREATE DATABASE \`${db}\``);
  } finally {
    await conn.end();
  }
  const url = new URL(admin);
  url.pathname = `/${db}`;
  return {
    url: url.toString(),
    async drop() {
      const c = await createConnection({ uri: admin });
      try {
        await c.query(`DROP DATABASE IF EXISTS \`${db}\``);
      } finally {
        await c.end();
      }
    },
  };
}
