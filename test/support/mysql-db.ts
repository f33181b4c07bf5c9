/** A fresh, empty MariaDB database for one suite or test, on the test server: its URL, and its removal. */
import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';
import { requireMysql } from './services';

export async function createMysqlDatabase(prefix = 'conveyor_ops'): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = await requireMysql();
  const db = `${prefix}_${randomBytes(6).toString('hex')}`;
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
