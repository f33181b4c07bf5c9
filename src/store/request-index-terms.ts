/**
 * The terms the queries of `requests` write for MariaDB's generated columns (migration
 * `1763800000340`): on MySQL they name the columns (MariaDB uses an index on a generated
 * column only when the query names it); on SQLite the plain conditions, which its partial
 * indexes match. Constants, as some are read for every submit.
 */
export interface RequestIndexTerms {
  /**
   * The index of a business key's queue: MariaDB's `ix_requests_key_waiters` (on
   * `key_queued_at`), SQLite's `ix_requests_key_hold` (business key, pipeline, hold, created,
   * id; migration `1763800000360`), which also serves the search by business key.
   */
  keyIndex: string;
  buffered: string;
  keyQueued: string;
  keyOrder: string;
  finishedStatus: string;
}

const MYSQL: RequestIndexTerms = Object.freeze({
  keyIndex: 'ix_requests_key_waiters',
  buffered: "buffered_status = 'buffered'",
  keyQueued: 'key_queued_at IS NOT NULL',
  keyOrder: 'key_queued_at, id',
  finishedStatus: 'finished_status',
});

const SQLITE: RequestIndexTerms = Object.freeze({
  keyIndex: 'ix_requests_key_hold',
  buffered: "status = 'buffered'",
  keyQueued: "hold = 'key'",
  keyOrder: 'created_at, id',
  finishedStatus: 'status',
});

export function requestIndexTerms(dialect: 'sqlite' | 'mysql'): RequestIndexTerms {
  return dialect === 'mysql' ? MYSQL : SQLITE;
}
