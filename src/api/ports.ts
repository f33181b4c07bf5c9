/**
 * What the API depends on: two small interfaces, not the engine. `Requests` reads and submits
 * requests; `Operations` acts on running ones, through the supervisor's inbox (it never calls
 * the supervisor). `ApiEngine` adds the read-only pieces the routes show (store, catalog,
 * deployment settings). The engine (`src/engine.ts`) satisfies it; the CLI composes it.
 */
import type { BrokerPool } from '../brokers/pool';
import type { Config } from '../config';
import type { Logger } from '../log/logger';
import type { MetricsSource } from '../metrics/metrics';
import type { Migrations } from '../migration/service';
import type { RequestRecord, RequestStatus, StepRunRecord } from '../model';
import type { PipelineCatalog } from '../pipeline/catalog';
import type { SourceRunner } from '../sources/runner';
import type { HandleResult, InboxMessage, StepResult } from '../supervisor/messages';
import type { SqlStore } from '../store/store';
import type { CallbackConfig } from '../transports/http';
import type { OutboundPolicy } from '../transports/outbound';
import type { Intake } from '../intake/intake';

/** A request with its step runs and its context, as the API reads it. */
export interface FoundRequest {
  request: RequestRecord;
  runs: StepRunRecord[];
  context: Record<string, unknown>;
}

/** Submitting requests and reading them. */
export interface Requests {
  readonly intake: Pick<Intake, 'accept'>;
  getRequest(id: string): Promise<FoundRequest | undefined>;
  /** The request's final status once it ends, or `undefined` after `timeoutMs`. */
  waitForEnd(requestId: string, timeoutMs: number): Promise<RequestStatus | undefined>;
}

/** Acting on running requests: every one is an inbox message. */
export interface Operations {
  /** An action, an event, resume, stop: decided by this process, which awaits the reply. */
  ask(message: InboxMessage): Promise<HandleResult>;
  /** A module's late answer (a callback), handed to whichever engine commits it; `false`: post it again. */
  deliverResult(result: StepResult): Promise<boolean>;
}

/** Everything the API uses. */
export interface ApiEngine extends Requests, Operations, MetricsSource {
  /** The configuration compiled at start (rate limits, body limit, live interval). */
  readonly config: Config;
  readonly store: SqlStore;
  readonly catalog: PipelineCatalog;
  readonly logger: Logger;
  readonly callbacks: CallbackConfig;
  /** The outbound rule, checked at submit (callback URLs). */
  readonly outbound: OutboundPolicy;
  readonly sources: Pick<SourceRunner, 'statuses'>;
  readonly brokers: Pick<BrokerPool, 'expand'>;
  /** False once shutdown began: new work is refused with 503. */
  readonly accepting: boolean;
  /** Moving requests between pipeline versions. */
  readonly migrations: Migrations;
  /** Wakes this process's migration runner (when it runs one). */
  kickMigrations(): void;
}
